// `preprocess` for a whole dataset, as nnU-Net v2's preprocess_dataset + DefaultPreprocessor.run:
// per configuration, the output folder is recreated and every training case is preprocessed in a
// worker pool (piscina); then the raw labels are copied to gt_segmentations/ (only when newer).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { dataRoots, discoverTrainingCases, findDataset, loadDatasetJson, DatasetError, type RawCase } from '../dataset/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { getConfiguration, loadPlans, type Plans } from '../planning/plans.js';
import { preprocessCaseFiles, type CaseSummary, type CaseTask } from './case-files.js';
import type { CaseOutcome } from './preprocess-worker.js';

/** nnU-Net's default -np per configuration (4 for any other). */
export const DEFAULT_NUM_PROCESSES: Record<string, number> = { '2d': 8, '3d_fullres': 4, '3d_lowres': 8 };

export interface PreprocessProgress {
  configuration: string;
  caseId: string;
  done: number;
  total: number;
  summary: CaseSummary;
}

export interface PreprocessDatasetOptions {
  plansName?: string;
  env?: NodeJS.ProcessEnv;
  onProgress?: (p: PreprocessProgress) => void;
}

export interface PreprocessedConfiguration {
  name: string;
  dataIdentifier: string;
  folder: string;
  cases: number;
}

export interface PreprocessDatasetResult {
  datasetName: string;
  configurations: PreprocessedConfiguration[];
  /** Requested configurations the plans do not have (nnU-Net skips them too). */
  skipped: string[];
  gtSegmentations: string;
}

/** One -np value per configuration: a single value applies to all, none gives nnU-Net's defaults. */
export function resolveNumProcesses(configurations: readonly string[], numProcesses?: number | readonly number[]): number[] {
  if (numProcesses === undefined) return configurations.map((c) => DEFAULT_NUM_PROCESSES[c] ?? 4);
  const list = typeof numProcesses === 'number' ? [numProcesses] : [...numProcesses];
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new RangeError(`-np values must be positive integers, got ${list.join(' ')}`);
  if (list.length === 1) return configurations.map(() => list[0]);
  if (list.length !== configurations.length) {
    throw new RangeError(`-np needs one value or one per configuration: ${configurations.length} configuration(s), ${list.length} value(s)`);
  }
  return list;
}

/**
 * The worker module: preprocess-worker.js in dist/; from the TypeScript sources (under tsx) a small
 * .mjs entry that loads the .ts worker through tsx, because worker threads do not inherit tsx's loader.
 */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './preprocess-worker.dev.mjs' : './preprocess-worker.js', import.meta.url).href;

const KNOWN_ERRORS = new Set(['DatasetError', 'ImageFormatError', 'VolumeTooLargeError']);

async function runCases(tasks: CaseTask[], np: number, onDone: (s: CaseSummary) => void): Promise<void> {
  const threads = Math.max(1, Math.min(np, tasks.length));
  if (threads === 1) {
    for (const task of tasks) onDone(await preprocessCaseFiles(task));
    return;
  }
  const pool = new Piscina<CaseTask, CaseOutcome>({
    filename: WORKER_URL,
    minThreads: threads,
    maxThreads: threads,
  });
  try {
    await Promise.all(
      tasks.map(async (task) => {
        const outcome = await pool.run(task);
        if (!outcome.ok) {
          if (KNOWN_ERRORS.has(outcome.name)) throw new DatasetError(outcome.message);
          throw Object.assign(new Error(outcome.message), { name: outcome.name, stack: outcome.stack });
        }
        onDone(outcome.summary);
      }),
    );
  } finally {
    await pool.destroy();
  }
}

/**
 * Preprocesses the training cases of a dataset (id or folder name) for each configuration with
 * the plans `<nnUNet_preprocessed>/<dataset>/<plansName>.json`.
 */
export async function preprocessDataset(
  dataset: string,
  configurations: readonly string[],
  numProcesses?: number | readonly number[],
  options: PreprocessDatasetOptions = {},
): Promise<PreprocessDatasetResult> {
  const env = options.env ?? process.env;
  const roots = dataRoots(env);
  const location = findDataset(dataset, roots.raw);
  const target = join(roots.preprocessed, location.name);
  const plansFile = join(target, `${options.plansName ?? 'nnUNetPlans'}.json`);
  if (!existsSync(plansFile)) throw new DatasetError('plans not found: run plan_experiment first', plansFile);
  const plans = await loadPlans(plansFile);
  const nps = resolveNumProcesses(configurations, numProcesses);
  const { json } = loadDatasetJson(location.folder);
  const cases = discoverTrainingCases(location.folder, json, env);
  if (cases.length === 0) throw new DatasetError('no training cases found', location.folder);
  await copyIfMissing(join(location.folder, 'dataset.json'), join(target, 'dataset.json'));

  const result: PreprocessDatasetResult = { datasetName: location.name, configurations: [], skipped: [], gtSegmentations: join(target, 'gt_segmentations') };
  for (const [i, name] of configurations.entries()) {
    if (!(name in plans.configurations)) {
      result.skipped.push(name);
      continue;
    }
    const folder = join(target, getConfiguration(plans, name, plansFile).data_identifier);
    // Like nnU-Net, start from an empty folder so no stale case survives a re-run.
    await rm(folder, { recursive: true, force: true });
    await mkdir(folder, { recursive: true });
    const tasks = cases.map((c) => caseTask(c, plans, name, json, folder));
    let done = 0;
    await runCases(tasks, nps[i], (summary) => {
      options.onProgress?.({ configuration: name, caseId: summary.caseId, done: ++done, total: tasks.length, summary });
    });
    result.configurations.push({ name, dataIdentifier: getConfiguration(plans, name).data_identifier, folder, cases: tasks.length });
  }
  await copyGroundTruth(cases, result.gtSegmentations, json.file_ending);
  return result;
}

function caseTask(c: RawCase, plans: Plans, configuration: string, json: ReturnType<typeof loadDatasetJson>['json'], folder: string): CaseTask {
  return {
    caseId: c.id,
    images: c.images,
    label: c.label,
    plans,
    configuration,
    labels: json.labels,
    regionsClassOrder: json.regions_class_order,
    outputFolder: folder,
  };
}

async function copyIfMissing(from: string, to: string): Promise<void> {
  if (!existsSync(to)) await writeFileAtomic(to, await readFile(from));
}

/** gt_segmentations/<id><ending>: copies of the raw labels, refreshed only when the raw file is newer. */
async function copyGroundTruth(cases: readonly RawCase[], folder: string, fileEnding: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  for (const c of cases) {
    const to = join(folder, c.id + fileEnding);
    const dest = await stat(to).catch(() => undefined);
    if (dest !== undefined && dest.mtimeMs >= (await stat(c.label)).mtimeMs) continue;
    await writeFileAtomic(to, await readFile(c.label));
  }
}
