// Evaluates a folder of predicted segmentations against a folder of references and writes
// nnU-Net's summary.json (REFERENCE §8.1, compute_metrics_on_folder). Files pair by name; like
// nnU-Net, a reference without a prediction is an error unless `chill` is set.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readNifti } from '../io/nifti.js';
import { dumpPythonJson } from '../util/pyjson.js';
import { computeCaseMetrics, labelOrRegionKey, summarize, type CaseResult, type LabelOrRegion, type Summary } from './metrics.js';

export interface EvaluateOptions {
  fileEnding: string;
  labelsOrRegions: LabelOrRegion[];
  ignoreLabel?: number;
  /** Where to write summary.json; omitted = not written. */
  outputFile?: string;
  /** Skip references that have no prediction instead of failing. */
  chill?: boolean;
  /** Cases evaluated at the same time. */
  concurrency?: number;
}

const filesWithEnding = (folder: string, ending: string): string[] => {
  try {
    return readdirSync(folder).filter((f) => f.endsWith(ending)).sort();
  } catch {
    throw new DatasetError('folder does not exist or cannot be read', folder);
  }
};

/** Metrics of one (reference, prediction) pair of label map files. */
export async function evaluateCase(referenceFile: string, predictionFile: string, options: Omit<EvaluateOptions, 'fileEnding'>): Promise<CaseResult> {
  const [ref, pred] = await Promise.all([readNifti(referenceFile), readNifti(predictionFile)]);
  if (ref.shape.join() !== pred.shape.join() || ref.channels !== pred.channels) {
    throw new DatasetError(`shape (${pred.shape.join(', ')}) does not match the reference's (${ref.shape.join(', ')}) in ${referenceFile}`, predictionFile);
  }
  const metrics = computeCaseMetrics(ref.data, pred.data, options.labelsOrRegions, options.ignoreLabel);
  return { reference_file: referenceFile, prediction_file: predictionFile, metrics: Object.fromEntries(metrics) };
}

export async function evaluateFolder(referenceFolder: string, predictionFolder: string, options: EvaluateOptions): Promise<Summary> {
  const refs = filesWithEnding(referenceFolder, options.fileEnding);
  const preds = new Set(filesWithEnding(predictionFolder, options.fileEnding));
  const missing = refs.filter((f) => !preds.has(f));
  if (missing.length > 0 && !options.chill) {
    throw new DatasetError(`${missing.length} reference case(s) have no prediction (use --chill to evaluate only the ones present): ${missing.join(', ')}`, predictionFolder);
  }
  const pairs = refs.filter((f) => preds.has(f));
  if (pairs.length === 0) throw new DatasetError(`no prediction files ending in ${options.fileEnding} match a reference in ${referenceFolder}`, predictionFolder);
  const results: CaseResult[] = new Array(pairs.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(options.concurrency ?? 4, pairs.length) }, async () => {
    while (next < pairs.length) {
      const i = next++;
      results[i] = await evaluateCase(join(referenceFolder, pairs[i]), join(predictionFolder, pairs[i]), options);
    }
  });
  await Promise.all(lanes);
  const summary = summarize(results, options.labelsOrRegions.map(labelOrRegionKey));
  if (options.outputFile) await writeFileAtomic(options.outputFile, dumpPythonJson(summary));
  return summary;
}
