// Predicts raw image files with a loaded model, as nnU-Net v2's predictor does per case
// (REFERENCE §7.3): read channels, preprocess with the same function training uses, sliding
// window over every fold (mean of logits), export to the input's geometry; writes CASE.nii.gz
// (+ CASE.npz with `probabilities` and CASE.json properties when asked).
import { join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import { encodeNpz } from '../io/npz.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeNifti } from '../io/nifti.js';
import { segmentationDatatype } from '../evaluation/postprocessing.js';
import { readRawCase } from '../preprocessing/case-files.js';
import { preprocessCase } from '../preprocessing/preprocessor.js';
import { exportPrediction, type ExportedPrediction } from './export-prediction.js';
import type { LoadedModel } from './model-folder.js';
import { ensembleFoldLogits } from './predict-logits.js';

export interface PredictOptions {
  stepSize?: number;
  /** Test-time mirroring over the checkpoint's allowed axes (nnU-Net default on). */
  mirroring?: boolean;
  saveProbabilities?: boolean;
  /** Previous-stage segmentation (raw geometry) for a cascade configuration. */
  previousStage?: ArrayLike<number>;
  onProgress?: (done: number, total: number) => void;
}

export interface CaseTimings {
  readS: number;
  preprocessS: number;
  predictS: number;
  exportS: number;
}

/** Geometry of the input image, which the segmentation file keeps. */
export interface ReferenceGeometry {
  shape: [number, number, number];
  spacing: [number, number, number];
  affine: number[][];
}

export interface CasePrediction extends ExportedPrediction {
  reference: ReferenceGeometry;
  properties: Record<string, unknown>;
  timings: CaseTimings;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Predicts one case given as channel files. */
export async function predictCase(model: LoadedModel, files: string[], o: PredictOptions = {}): Promise<CasePrediction> {
  let t = performance.now();
  const { images, input } = await readRawCase(files, undefined);
  if (images.length !== model.imageChannels) {
    throw new DatasetError(`the case has ${images.length} channel(s) but the model expects ${model.imageChannels} (dataset.json channel_names)`, files[0]);
  }
  const affine = (input.nibabel_stuff as { original_affine: number[][] }).original_affine;
  const reference: ReferenceGeometry = { shape: input.shape as ReferenceGeometry['shape'], spacing: input.spacing as ReferenceGeometry['spacing'], affine };
  const readS = seconds(t);
  t = performance.now();
  const isCascade = Boolean(model.configuration.previous_stage);
  if (isCascade && !o.previousStage) {
    throw new DatasetError(`configuration ${model.configurationName} is a cascade stage: give the previous stage's segmentation (-prev_stage_predictions)`);
  }
  const pre = preprocessCase(images, undefined, { spacing: reference.spacing, shape: reference.shape }, model.plans, model.configuration, model.labels, {
    withoutSegmentation: !isCascade,
    previousStageSegmentation: isCascade ? o.previousStage : undefined,
  });
  const preprocessS = seconds(t);
  t = performance.now();
  const mirrorAxes = o.mirroring === false ? [] : model.folds[0].mirrorAxes;
  const logits = await ensembleFoldLogits(
    model.folds.map((f) => f.runner),
    pre.data,
    pre.channels,
    pre.shape as [number, number, number],
    { patchSize: model.configuration.patch_size, stepSize: o.stepSize, mirrorAxes, onProgress: o.onProgress },
  );
  const predictS = seconds(t);
  t = performance.now();
  const exported = exportPrediction(logits, pre.properties, model.plans, model.configuration, model.labels, { saveProbabilities: o.saveProbabilities });
  const properties = { ...pre.properties, nibabel_stuff: { original_affine: affine } };
  return { ...exported, reference, properties, timings: { readS, preprocessS, predictS, exportS: seconds(t) } };
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
