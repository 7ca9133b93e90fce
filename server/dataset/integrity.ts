// Dataset integrity verification: every check of nnU-Net v2's verify_dataset_integrity
// (REFERENCE §1.5). Unlike nnU-Net, which stops at the first failing check group, we collect
// *all* problems — each with its file and reason — so a user fixes a dataset in one pass.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readNifti, type NiftiImage } from '../io/nifti.js';
import { discoverTrainingCases, type RawCase } from './cases.js';
import { readDatasetJsonFile, type DatasetJson } from './dataset-json.js';
import { LabelManager } from './labels.js';

export interface Problem {
  file: string;
  reason: string;
}

export interface IntegrityReport {
  ok: boolean;
  errors: Problem[];
  warnings: Problem[];
  casesChecked: number;
}

export interface VerifyOptions {
  /** Cases read at the same time (each holds its images in memory). */
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
  /** Called after each case, for progress display. */
  onCase?: (done: number, total: number, caseId: string) => void;
}

const SUPPORTED_ENDINGS = ['.nii.gz', '.nii'];

/** numpy.allclose with its defaults (rtol 1e-5, atol 1e-8). */
function allClose(a: readonly number[], b: readonly number[], rtol = 1e-5, atol = 1e-8): boolean {
  return a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= atol + rtol * Math.abs(b[i]));
}

const fmt = (v: readonly number[]) => `(${v.map((x) => +x.toFixed(6)).join(', ')})`;

function hasNaN(data: ArrayLike<number>): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== data[i]) return true;
  return false;
}

function uniqueValues(data: ArrayLike<number>): number[] {
  const seen = new Set<number>();
  for (let i = 0; i < data.length; i++) seen.add(data[i]);
  return [...seen].sort((a, b) => a - b);
}

async function tryRead(file: string, errors: Problem[]): Promise<NiftiImage | undefined> {
  try {
    return await readNifti(file);
  } catch (err) {
    // The reader's errors already start with the file name; keep only the reason here.
    const message = (err as Error).message;
    errors.push({ file, reason: message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message });
    return undefined;
  }
}

async function verifyCase(c: RawCase, json: DatasetJson, expectedLabels: Set<number>, errors: Problem[], warnings: Problem[]): Promise<void> {
  const numChannels = Object.keys(json.channel_names).length;
  if (c.images.length === 0) {
    errors.push({ file: c.id, reason: 'case has no image files' });
    return;
  }
  const images: NiftiImage[] = [];
  for (const file of c.images) {
    const img = await tryRead(file, errors);
    if (!img) continue;
    if (hasNaN(img.data)) errors.push({ file, reason: 'image contains NaN values' });
    images.push(img);
  }
  const labelExists = existsSync(c.label);
  if (!labelExists) errors.push({ file: c.label, reason: `label file missing for case ${c.id}` });
  const seg = labelExists ? await tryRead(c.label, errors) : undefined;
  if (images.length !== c.images.length) return; // unreadable images were reported above

  const channels = images.reduce((n, img) => n + img.channels, 0);
  if (channels !== numChannels) {
    errors.push({ file: c.images[0], reason: `case ${c.id} has ${channels} channel(s) but dataset.json channel_names lists ${numChannels}` });
  }
  const ref = images[0];
  images.slice(1).forEach((img, i) => {
    const file = c.images[i + 1];
    if (!allClose(img.shape, ref.shape, 0, 0)) errors.push({ file, reason: `shape ${fmt(img.shape)} differs from channel 0's ${fmt(ref.shape)}` });
    if (!allClose(img.spacing, ref.spacing)) errors.push({ file, reason: `spacing ${fmt(img.spacing)} differs from channel 0's ${fmt(ref.spacing)}` });
    if (!allClose(img.affine.flat(), ref.affine.flat(), 1e-5, 1e-4)) warnings.push({ file, reason: `affine differs from channel 0's` });
  });
  if (!seg) return;
  if (seg.channels !== 1) errors.push({ file: c.label, reason: `segmentation must have one channel, has ${seg.channels}` });
  if (hasNaN(seg.data)) errors.push({ file: c.label, reason: 'segmentation contains NaN values' });
  if (!allClose(seg.shape, ref.shape, 0, 0)) {
    errors.push({ file: c.label, reason: `shape ${fmt(seg.shape)} does not match image shape ${fmt(ref.shape)} of ${c.images[0]}` });
  }
  if (!allClose(seg.spacing, ref.spacing)) {
    errors.push({ file: c.label, reason: `spacing ${fmt(seg.spacing)} does not match image spacing ${fmt(ref.spacing)}` });
  }
  if (!allClose(seg.affine.flat(), ref.affine.flat(), 1e-5, 1e-4)) {
    warnings.push({ file: c.label, reason: 'affine of segmentation differs from the image affine (orientation or origin mismatch?)' });
  }
  const unexpected = uniqueValues(seg.data).filter((v) => !expectedLabels.has(v));
  if (unexpected.length > 0) {
    errors.push({ file: c.label, reason: `unexpected label value(s) ${unexpected.join(', ')}; expected only ${[...expectedLabels].join(', ')}` });
  }
}

/** Runs `worker` over `items` with at most `limit` in flight. */
async function forEachLimited<T>(items: T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await worker(items[next++]);
  });
  await Promise.all(lanes);
}

/** Verifies a raw dataset folder; never throws for problems in the data, only reports them. */
export async function verifyDatasetIntegrity(datasetFolder: string, options: VerifyOptions = {}): Promise<IntegrityReport> {
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const jsonFile = join(datasetFolder, 'dataset.json');
  const report = (casesChecked: number): IntegrityReport => ({ ok: errors.length === 0, errors, warnings, casesChecked });

  const parsed = readDatasetJsonFile(jsonFile);
  for (const reason of parsed.problems) errors.push({ file: jsonFile, reason });
  if (parsed.problems.length > 0) return report(0);
  const json = parsed.json;

  if (!json.dataset) {
    for (const sub of ['imagesTr', 'labelsTr']) {
      if (!existsSync(join(datasetFolder, sub))) errors.push({ file: join(datasetFolder, sub), reason: 'folder is missing' });
    }
    if (errors.length > 0) return report(0);
  }
  if (!SUPPORTED_ENDINGS.includes(json.file_ending)) {
    errors.push({ file: jsonFile, reason: `file_ending "${json.file_ending}" has no reader here; supported: ${SUPPORTED_ENDINGS.join(', ')}` });
    return report(0);
  }

  let labels: LabelManager;
  try {
    labels = LabelManager.fromDatasetJson(json);
  } catch (err) {
    errors.push({ file: jsonFile, reason: (err as Error).message });
    return report(0);
  }
  const consecutive = labels.consecutiveLabelProblem();
  if (consecutive) errors.push({ file: jsonFile, reason: consecutive });

  const cases = discoverTrainingCases(datasetFolder, json, options.env);
  if (cases.length !== json.numTraining) {
    errors.push({ file: jsonFile, reason: `numTraining is ${json.numTraining} but ${cases.length} case(s) were found` });
  }
  const expected = new Set(labels.expectedLabelValues);
  let done = 0;
  await forEachLimited(cases, options.concurrency ?? 4, async (c) => {
    await verifyCase(c, json, expected, errors, warnings);
    options.onCase?.(++done, cases.length, c.id);
  });
  const byFile = (a: Problem, b: Problem) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
  errors.sort(byFile);
  warnings.sort(byFile);
  return report(cases.length);
}
