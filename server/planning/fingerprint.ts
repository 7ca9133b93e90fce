// The dataset fingerprint (nnU-Net v2's DatasetFingerprintExtractor, REFERENCE §2): per-case crop
// shapes, spacings and foreground intensity samples, reduced to dataset statistics and written to
// nnUNet_preprocessed/DatasetXXX/dataset_fingerprint.json (sorted keys). Departs from nnU-Net by
// refusing a dataset with no foreground at all (nnU-Net crashes on an empty percentile there).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { dataRoots, discoverTrainingCases, findDataset, loadDatasetJson, type RawCase } from '../dataset/index.js';
import { DatasetError } from '../dataset/errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { analyzeCase, type CaseFingerprint, type IntensityHistogram } from './fingerprint-case.js';
import type { CaseOutcome, CaseTask } from './fingerprint-worker.js';
import { median, weightedPercentile } from './numeric.js';
import type { IntensityProperties } from './plans.js';
import { validateIntensityProperties } from './plans-validate.js';
import { parsePythonJson, toPythonJson, type JsonPath } from '../util/python-json.js';

export interface DatasetFingerprint {
  foreground_intensity_properties_per_channel: Record<string, IntensityProperties>;
  median_relative_size_after_cropping: number;
  /** Per case, reader axis order, after the nonzero crop. */
  shapes_after_crop: number[][];
  /** Per case, reader axis order (mm). */
  spacings: number[][];
}

/** nnU-Net's budget of foreground samples per channel for the whole dataset (10e7). */
export const FOREGROUND_SAMPLES_TOTAL = 1e8;

/** Samples drawn per case and channel: int(1e8 // n_cases). */
export const samplesPerCase = (numCases: number, total = FOREGROUND_SAMPLES_TOTAL) => Math.floor(total / numCases);

/** Merges per-case histograms of one channel into one ascending histogram. */
export function mergeHistograms(parts: readonly IntensityHistogram[]): IntensityHistogram {
  const all = new Float32Array(parts.reduce((n, p) => n + p.values.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p.values, o);
    o += p.values.length;
  }
  all.sort();
  let n = 0;
  for (let i = 0; i < all.length; i++) if (n === 0 || all[i] !== all[n - 1]) all[n++] = all[i];
  const values = all.slice(0, n);
  const counts = new Float64Array(n);
  for (const p of parts) {
    // Both are ascending, so one forward walk places every value.
    let j = 0;
    for (let i = 0; i < p.values.length; i++) {
      while (values[j] < p.values[i]) j++;
      counts[j] += p.counts[i];
    }
  }
  return { values, counts };
}

/**
 * Dataset statistics of the pooled samples, as nnU-Net computes them on its float32 array: mean and
 * std (ddof 0) are float32 results; min, max and the percentiles are numpy's linear percentiles.
 */
export function intensityStatistics(h: IntensityHistogram): IntensityProperties {
  const cumulative = new Float64Array(h.counts.length);
  let n = 0;
  let sum = 0;
  for (let i = 0; i < h.counts.length; i++) {
    n += h.counts[i];
    cumulative[i] = n;
    sum += h.counts[i] * h.values[i];
  }
  if (n === 0) throw new RangeError('no samples');
  const mean = Math.fround(sum / n);
  let squares = 0;
  for (let i = 0; i < h.counts.length; i++) squares += h.counts[i] * (h.values[i] - mean) ** 2;
  return {
    max: h.values[h.values.length - 1],
    mean,
    median: weightedPercentile(h.values, cumulative, 50),
    min: h.values[0],
    percentile_00_5: weightedPercentile(h.values, cumulative, 0.5),
    percentile_99_5: weightedPercentile(h.values, cumulative, 99.5),
    std: Math.fround(Math.sqrt(squares / n)),
  };
}

/** Reduces per-case results (in case order) to the fingerprint. */
export function combineCases(cases: readonly CaseFingerprint[], numChannels: number, datasetName = 'dataset'): DatasetFingerprint {
  if (cases.length === 0) throw new DatasetError(`${datasetName} has no training cases`);
  const props: Record<string, IntensityProperties> = {};
  for (let c = 0; c < numChannels; c++) {
    const merged = mergeHistograms(cases.map((k) => k.intensities[c]).filter((h) => h !== undefined));
    if (merged.values.length === 0) {
      throw new DatasetError(
        `${datasetName}: no training case has foreground (label > 0) voxels inside its nonzero region, so foreground intensity statistics cannot be computed; check labelsTr`,
      );
    }
    props[String(c)] = intensityStatistics(merged);
  }
  return {
    foreground_intensity_properties_per_channel: props,
    median_relative_size_after_cropping: median(cases.map((k) => k.relativeSizeAfterCropping)),
    shapes_after_crop: cases.map((k) => [...k.shapeAfterCrop]),
    spacings: cases.map((k) => [...k.spacing]),
  };
}

const fingerprintFloatPath = (path: JsonPath) => path[0] !== 'shapes_after_crop';

export function formatFingerprint(fp: DatasetFingerprint): string {
  return toPythonJson(fp, { sortKeys: true, isFloat: fingerprintFloatPath });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a fingerprint read from disk (the planner trusts nothing it did not check). */
export function parseFingerprint(json: unknown, file?: string): DatasetFingerprint {
  const fail = (key: string, reason: string): never => {
    throw new DatasetError(`${key}: ${reason}`, file);
  };
  if (!isRecord(json)) fail('(root)', 'fingerprint must be a JSON object');
  const fp = json as Record<string, unknown>;
  const rows = (key: string, check: (x: number) => boolean, what: string): number[][] => {
    const v = fp[key];
    if (!Array.isArray(v) || v.length === 0) fail(key, v === undefined ? 'required key is missing' : 'must be a non-empty list with one entry per case');
    (v as unknown[]).forEach((row, i) => {
      if (!Array.isArray(row) || row.length !== 3 || !row.every((x) => typeof x === 'number' && check(x))) {
        fail(`${key}[${i}]`, `must be 3 ${what}, got ${JSON.stringify(row)}`);
      }
    });
    return v as number[][];
  };
  const shapes = rows('shapes_after_crop', (x) => Number.isInteger(x) && x > 0, 'positive integers');
  const spacings = rows('spacings', (x) => Number.isFinite(x) && x > 0, 'positive finite spacings (mm)');
  if (shapes.length !== spacings.length) fail('spacings', `has ${spacings.length} entries but shapes_after_crop has ${shapes.length}`);
  const rel = fp.median_relative_size_after_cropping;
  if (typeof rel !== 'number' || !(rel > 0 && rel <= 1)) fail('median_relative_size_after_cropping', `must be a number in (0, 1], got ${JSON.stringify(rel)}`);
  const props = fp.foreground_intensity_properties_per_channel;
  if (!isRecord(props) || Object.keys(props).length === 0) fail('foreground_intensity_properties_per_channel', 'must be an object keyed by channel index');
  for (const [c, p] of Object.entries(props as Record<string, unknown>)) validateIntensityProperties(p, `foreground_intensity_properties_per_channel.${c}`, file);
  return fp as unknown as DatasetFingerprint;
}

export async function loadFingerprint(path: string): Promise<DatasetFingerprint> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new DatasetError('dataset fingerprint is missing; run `nnunet extract_fingerprint` first', path);
  }
  let json: unknown;
  try {
    json = parsePythonJson(text);
  } catch (err) {
    throw new DatasetError(`not valid JSON: ${(err as Error).message}`, path);
  }
  return parseFingerprint(json, path);
}

export async function saveFingerprint(path: string, fp: DatasetFingerprint): Promise<void> {
  await writeFileAtomic(path, formatFingerprint(fp));
}

export interface ExtractOptions {
  /** Cases analysed at the same time, each in a worker thread (nnU-Net's -np); 1 runs in this thread. */
  numProcesses?: number;
  /** Recompute even if the fingerprint file exists (nnU-Net's --clean). */
  clean?: boolean;
  env?: NodeJS.ProcessEnv;
  onCase?: (done: number, total: number, caseId: string) => void;
  /** Foreground samples per channel for the whole dataset; nnU-Net's 1e8 unless a test wants speed. */
  foregroundSamplesTotal?: number;
}

export interface ExtractResult {
  fingerprint: DatasetFingerprint;
  file: string;
  datasetName: string;
  /** False when an existing file was read instead. */
  computed: boolean;
}

const KNOWN_ERRORS = new Set(['DatasetError', 'ImageFormatError', 'VolumeTooLargeError']);

/** The worker module next to this one; from TypeScript sources, a loader shim in front of it. */
function workerEntry(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return new URL(fromSource ? './fingerprint-worker-tsx.mjs' : './fingerprint-worker.js', import.meta.url).href;
}

async function analyzeAll(cases: RawCase[], samples: number, options: ExtractOptions): Promise<CaseFingerprint[]> {
  const total = cases.length;
  let done = 0;
  const report = (c: RawCase) => options.onCase?.(++done, total, c.id);
  const np = Math.max(1, Math.min(options.numProcesses ?? 4, total));
  if (np === 1) {
    const out: CaseFingerprint[] = [];
    for (const c of cases) {
      out.push(await analyzeCase(c.images, c.label, samples));
      report(c);
    }
    return out;
  }
  const pool = new Piscina<CaseTask, CaseOutcome>({ filename: workerEntry(), minThreads: np, maxThreads: np });
  try {
    return await Promise.all(
      cases.map(async (c) => {
        const outcome = await pool.run({ images: c.images, label: c.label, samplesPerChannel: samples });
        if (!outcome.ok) {
          if (KNOWN_ERRORS.has(outcome.name)) throw new DatasetError(outcome.message);
          throw Object.assign(new Error(outcome.message), { name: outcome.name, stack: outcome.stack });
        }
        report(c);
        return outcome.result;
      }),
    );
  } finally {
    await pool.destroy();
  }
}

/**
 * Extracts (or reads, when present and not `clean`) the fingerprint of a raw dataset given by id
 * or folder name, writing it to `nnUNet_preprocessed/<dataset>/dataset_fingerprint.json`.
 */
export async function extractFingerprint(dataset: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const env = options.env ?? process.env;
  const roots = dataRoots(env);
  const location = findDataset(dataset, roots.raw);
  const file = join(roots.preprocessed, location.name, 'dataset_fingerprint.json');
  if (!options.clean && existsSync(file)) {
    return { fingerprint: await loadFingerprint(file), file, datasetName: location.name, computed: false };
  }
  const { json } = loadDatasetJson(location.folder);
  const cases = discoverTrainingCases(location.folder, json, env);
  if (cases.length === 0) throw new DatasetError('no training cases found', location.folder);
  for (const c of cases) if (!existsSync(c.label)) throw new DatasetError(`label file missing for case ${c.id}`, c.label);
  const results = await analyzeAll(cases, samplesPerCase(cases.length, options.foregroundSamplesTotal), options);
  const numChannels = Object.keys(json.channel_names).length;
  results.forEach((r, i) => {
    if (r.intensities.length !== numChannels) {
      throw new DatasetError(`case ${cases[i].id} has ${r.intensities.length} channel(s) but dataset.json channel_names lists ${numChannels}`, cases[i].images[0]);
    }
  });
  const fingerprint = combineCases(results, numChannels, location.name);
  await saveFingerprint(file, fingerprint);
  return { fingerprint, file, datasetName: location.name, computed: true };
}
