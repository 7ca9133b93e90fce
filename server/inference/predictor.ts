// Predicts raw image files with a loaded model, as nnU-Net v2's predictor does per case
// (REFERENCE §7.3): read channels, preprocess with the same function training uses, sliding
// window over every fold (mean of logits), export to the input's geometry; writes CASE.nii.gz
// (+ CASE.npz with `probabilities` and CASE.json properties when asked). The CPU-bound stages
// (case-stages.ts) run where `work` says: in-line, or in the server's worker pool (case-work.ts).
import { join } from 'node:path';
import { encodeNpz } from '../io/npz.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeNifti } from '../io/nifti.js';
import { segmentationDatatype } from '../evaluation/postprocessing.js';
import type { CaseModelSpec, EncodedOutputs, ReferenceGeometry } from './case-stages.js';
import { inlineCaseWork, type CaseWork } from './case-work.js';
import type { ExportedPrediction } from './export-prediction.js';
import type { LoadedModel } from './model-folder.js';
import { ensembleFoldLogits } from './predict-logits.js';

export type { ReferenceGeometry };

export interface PredictOptions {
  stepSize?: number;
  /** Test-time mirroring over the checkpoint's allowed axes (nnU-Net default on). */
  mirroring?: boolean;
  saveProbabilities?: boolean;
  /** Previous-stage segmentation (raw geometry) for a cascade configuration. */
  previousStage?: ArrayLike<number>;
  onProgress?: (done: number, total: number) => void;
  /** Where preprocessing and export run (default: in-line on this thread). */
  work?: CaseWork;
  /** Also encode the outputs (.nii.gz segmentation, .npz probabilities) in the export stage. */
  encode?: { segmentation: boolean; probabilities: boolean };
  /** Stops a stage running in a worker thread (in-line stages run to their end). */
  signal?: AbortSignal;
}

export interface CaseTimings {
  readS: number;
  preprocessS: number;
  predictS: number;
  exportS: number;
}

export interface CasePrediction extends ExportedPrediction {
  reference: ReferenceGeometry;
  properties: Record<string, unknown>;
  timings: CaseTimings;
  /** The outputs as files' bytes, when `encode` asked for them. */
  encoded: EncodedOutputs;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** The plain-data part of a loaded model that the preprocess and export stages need. */
export function caseModelSpec(model: LoadedModel): CaseModelSpec {
  const { plans, configurationName, configuration, imageChannels } = model;
  return { plans, configurationName, configuration, imageChannels, datasetJson: { labels: model.datasetJson.labels, regions_class_order: model.datasetJson.regions_class_order } };
}

/** Predicts one case given as channel files. */
export async function predictCase(model: LoadedModel, files: string[], o: PredictOptions = {}): Promise<CasePrediction> {
  const work = o.work ?? inlineCaseWork;
  const spec = caseModelSpec(model);
  const pre = await work.preprocess({ spec, files, previousStage: o.previousStage }, o.signal);
  const t = performance.now();
  const mirrorAxes = o.mirroring === false ? [] : model.folds[0].mirrorAxes;
  const logits = await ensembleFoldLogits(
    model.folds.map((f) => f.runner),
    pre.data,
    pre.channels,
    pre.shape,
    { patchSize: model.configuration.patch_size, stepSize: o.stepSize, mirrorAxes, onProgress: o.onProgress },
  );
  const predictS = seconds(t);
  const { encoded, exportS, ...exported } = await work.export(
    { spec, logits, properties: pre.properties, reference: pre.reference, saveProbabilities: Boolean(o.saveProbabilities), encode: o.encode },
    o.signal,
  );
  const properties = { ...pre.properties, nibabel_stuff: { original_affine: pre.reference.affine } };
  return { ...exported, reference: pre.reference, properties, encoded, timings: { readS: pre.readS, preprocessS: pre.preprocessS, predictS, exportS } };
}

/** Writes CASE{ending} with the input's geometry, and CASE.npz + CASE.json when probabilities exist. */
export async function writeCasePrediction(outputFolder: string, caseId: string, fileEnding: string, p: CasePrediction): Promise<void> {
  await writeNifti(
    join(outputFolder, caseId + fileEnding),
    { data: p.segmentation, shape: p.reference.shape, channels: 1, spacing: p.reference.spacing, affine: p.reference.affine },
    { datatype: segmentationDatatype(p.segmentation) },
  );
  if (p.probabilities) {
    const K = p.probabilities.length / (p.shape[0] * p.shape[1] * p.shape[2]);
    await writeFileAtomic(join(outputFolder, `${caseId}.npz`), encodeNpz({ probabilities: { dtype: 'float32', shape: [K, ...p.shape], data: p.probabilities } }, { compress: true }));
    await writeFileAtomic(join(outputFolder, `${caseId}.json`), JSON.stringify(p.properties, null, 2));
  }
}
