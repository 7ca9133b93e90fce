// What the server load benchmarks share (load-predict, load-predict-replicas, event-loop): their
// command-line flags, the latency percentile, and the model and cases they predict with (the small
// nnU-Net fixture model, Dataset104_HippoDev fold 0, on real Hippocampus cases).
import { join } from 'node:path';
import { HIPPOCAMPUS } from '../test/helpers.js';
import { MODEL_FOLDER } from '../test/server/server-process.js';

/** The value after `--name` on the command line, else `fallback`. */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** A numeric `--name` flag. */
export const flag = (name: string, fallback: number): number => Number(option(name, String(fallback)));

/** The p-th percentile (nearest rank) of ascending values. */
export const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

export const FIXTURE_MODEL = { dataset: '104', model_folder: MODEL_FOLDER };

export const LOAD_CASES = ['hippocampus_001', 'hippocampus_003', 'hippocampus_004'].map((c) => join(HIPPOCAMPUS, 'imagesTr', `${c}_0000.nii.gz`));
