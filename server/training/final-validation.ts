// nnU-Net's perform_actual_validation (REFERENCE §5.10): the trained network exported to ONNX, every
// validation case of the fold predicted from its preprocessed array with the predictor's sliding
// window (step 0.5, Gaussian, test-time mirroring over the trainer's axes), exported to raw geometry
// in fold_X/validation/, evaluated against gt_segmentations → summary.json. For a 3d_lowres stage
// the logits also go, resampled to the next stage's grid, to predicted_next_stage/<next>/CASE.npy.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exportOnnx } from '../engine/onnx/export.js';
import { evaluateFolder } from '../evaluation/evaluate-folder.js';
import { segmentationDatatype } from '../evaluation/postprocessing.js';
import { exportPrediction, applyInferenceNonlinearity } from '../inference/export-prediction.js';
import { writeFoldOnnx } from '../inference/model-folder.js';
import { OnnxRunner } from '../inference/onnx-runner.js';
import { slidingWindowLogits, type Logits } from '../inference/predict-logits.js';
import type { Shape3 } from '../inference/volume-ops.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeNifti } from '../io/nifti.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { encodeNpz } from '../io/npz.js';
import type { LabelManager } from '../dataset/labels.js';
import type { DatasetJson } from '../dataset/dataset-json.js';
import { getConfiguration, type Configuration, type Plans } from '../planning/plans.js';
import type { CaseProperties } from '../preprocessing/preprocessor.js';
import { resampleLogitsToShape } from '../preprocessing/resampling.js';
import type { TrainableNetwork } from './custom-trainer.js';
import type { EmitEvent } from './events.js';
import type { TrainingLogger } from './logging.js';

export interface FinalValidationInput {
  network: TrainableNetwork;
  trainerName: string;
  plans: Plans;
  configurationName: string;
  configuration: Configuration;
  datasetJson: DatasetJson;
  labels: LabelManager;
  /** nnUNet_preprocessed/DatasetXXX */
  preprocessedBase: string;
  caseIds: string[];
  modelFolder: string;
  foldFolder: string;
  gtFolder: string;
  mirrorAxes: number[];
  saveProbabilities: boolean;
  /** Write fold_X/model.onnx (+ sidecar) for the predictor; false when validating other weights than the final ones. */
  writeModelOnnx: boolean;
  /** Previous-stage segmentations (cascade), one CASE.npy per case on this configuration's grid. */
  previousStageFolder: string | null;
  logger: TrainingLogger;
  emit: EmitEvent;
  stopRequested?: () => boolean;
}

export interface FinalValidationResult {
  summaryFile: string;
  meanDice: number;
  cases: number;
}

/** data (c, x, y, z) with one channel per foreground label of the previous stage appended. */
function appendOneHot(data: Float32Array, channels: number, prev: ArrayLike<number>, foreground: number[]): { data: Float32Array; channels: number } {
  const voxels = data.length / channels;
  if (prev.length !== voxels) throw new Error(`previous-stage segmentation has ${prev.length} voxels, the case ${voxels}`);
  const out = new Float32Array(voxels * (channels + foreground.length));
  out.set(data);
  foreground.forEach((label, i) => {
    const off = (channels + i) * voxels;
    for (let v = 0; v < voxels; v++) if (prev[v] === label) out[off + v] = 1;
  });
  return { data: out, channels: channels + foreground.length };
}

/** Label map of logits (argmax, or region thresholds on sigmoids) as export does. */
function segmentationOfLogits(l: Logits, labels: LabelManager): Uint16Array {
  const voxels = l.shape[0] * l.shape[1] * l.shape[2];
  const values = labels.hasRegions ? applyInferenceNonlinearity(l.data, l.channels, voxels, labels) : l.data;
  return labels.probabilitiesToSegmentation(values, voxels);
}

/** resample_and_save: logits to the next stage's preprocessed shape, then a label map as CASE.npy. */
async function predictNextStage(i: FinalValidationInput, caseId: string, logits: Logits): Promise<void> {
  const next = i.configuration.next_stage;
  const names = next === undefined ? [] : Array.isArray(next) ? next : [next];
  for (const name of names) {
    const nextConfig = getConfiguration(i.plans, name);
    const nextCase = join(i.preprocessedBase, nextConfig.data_identifier, `${caseId}.npy`);
    if (!existsSync(nextCase)) {
      i.logger.print(`Predicting next stage ${name} failed for case ${caseId} because the preprocessed file is missing! Run the preprocessing for this configuration first!`);
      continue;
    }
    const target = (await readNpy(nextCase)).shape.slice(1) as Shape3;
    // nnU-Net passes this stage's spacing as both current and target spacing (only the
    // separate-z decision depends on it).
    const spacing = i.configuration.spacing.length === 3 ? i.configuration.spacing : [1, ...i.configuration.spacing];
    const data = resampleLogitsToShape(logits.data, logits.channels, logits.shape, target, spacing, spacing, i.configuration.resampling_fn_probabilities_kwargs);
    const seg = segmentationOfLogits({ data, channels: logits.channels, shape: target }, i.labels);
    const big = i.labels.foregroundLabels.length >= 255;
    await writeNpy(join(i.modelFolder, 'predicted_next_stage', name, `${caseId}.npy`), big ? { dtype: 'int16', shape: target, data: Int16Array.from(seg) } : { dtype: 'uint8', shape: target, data: Uint8Array.from(seg) });
  }
}

function affineOf(p: CaseProperties): number[][] {
  const stuff = p.nibabel_stuff as { original_affine?: number[][] } | undefined;
  if (stuff?.original_affine) return stuff.original_affine;
  // Without the reader's affine (e.g. data preprocessed elsewhere): axis-aligned from the spacing,
  // whose order is nnU-Net's (k, j, i).
  const [sk, sj, si] = p.spacing;
  return [
    [si, 0, 0, 0],
    [0, sj, 0, 0],
    [0, 0, sk, 0],
    [0, 0, 0, 1],
  ];
}

async function predictCase(i: FinalValidationInput, runner: OnnxRunner, validationFolder: string, caseId: string): Promise<void> {
  const folder = join(i.preprocessedBase, i.configuration.data_identifier);
  const arr = await readNpy(join(folder, `${caseId}.npy`));
  const properties = JSON.parse(await readFile(join(folder, `${caseId}.json`), 'utf8')) as CaseProperties;
  let data = arr.data as Float32Array;
  let channels = arr.shape[0];
  const shape = arr.shape.slice(1) as Shape3;
  if (i.previousStageFolder) {
    const prev = await readNpy(join(i.previousStageFolder, `${caseId}.npy`));
    ({ data, channels } = appendOneHot(data, channels, prev.data, i.labels.foregroundLabels));
  }
  i.logger.print(`predicting ${caseId}`);
  i.logger.print(`${caseId}, shape [${[channels, ...shape].join(', ')}], rank 0`);
  const logits = await slidingWindowLogits(runner, data, channels, shape, { patchSize: i.configuration.patch_size, stepSize: 0.5, mirrorAxes: i.mirrorAxes });
  const exported = exportPrediction(logits, properties, i.plans, i.configuration, i.labels, { saveProbabilities: i.saveProbabilities });
  const ending = i.datasetJson.file_ending;
  await writeNifti(
    join(validationFolder, caseId + ending),
    { data: exported.segmentation, shape: exported.shape, channels: 1, spacing: properties.spacing as Shape3, affine: affineOf(properties) },
    { datatype: segmentationDatatype(exported.segmentation) },
  );
  if (exported.probabilities) {
    const K = logits.channels;
    await writeFileAtomic(join(validationFolder, `${caseId}.npz`), encodeNpz({ probabilities: { dtype: 'float32', shape: [K, ...exported.shape], data: exported.probabilities } }, { compress: true }));
    await writeFileAtomic(join(validationFolder, `${caseId}.json`), JSON.stringify(properties, null, 2));
  }
  await predictNextStage(i, caseId, logits);
}

export async function performFinalValidation(i: FinalValidationInput): Promise<FinalValidationResult | null> {
  i.network.deepSupervision = false;
  i.network.eval();
  const bytes = exportOnnx(i.network, { metadata: { trainer: i.trainerName, configuration: i.configurationName } });
  if (i.writeModelOnnx) {
    await writeFoldOnnx(i.foldFolder, bytes, { source: join(i.foldFolder, 'checkpoint_final.safetensors'), mirrorAxes: i.mirrorAxes, trainer: i.trainerName, configuration: i.configurationName });
  }
  const validationFolder = join(i.foldFolder, 'validation');
  // As nnU-Net (clean_val_folder): no stale case from an earlier run enters the summary.
  await rm(validationFolder, { recursive: true, force: true });
  await mkdir(validationFolder, { recursive: true });
  const runner = await OnnxRunner.load(bytes, join(i.foldFolder, 'model.onnx'));
  try {
    i.emit({ type: 'validation', phase: 'started', cases: i.caseIds.length });
    for (const [n, caseId] of i.caseIds.entries()) {
      if (i.stopRequested?.()) return null;
      await predictCase(i, runner, validationFolder, caseId);
      i.emit({ type: 'validation', phase: 'case', cases: i.caseIds.length, done: n + 1, caseId });
    }
  } finally {
    await runner.release();
  }
  const summaryFile = join(validationFolder, 'summary.json');
  const summary = await evaluateFolder(i.gtFolder, validationFolder, {
    fileEnding: i.datasetJson.file_ending,
    labelsOrRegions: i.labels.foregroundRegions,
    ignoreLabel: i.labels.ignoreLabel,
    outputFile: summaryFile,
    chill: true,
  });
  const meanDice = summary.foreground_mean.Dice;
  i.logger.print('Validation complete');
  i.logger.print('Mean Validation Dice: ', meanDice);
  i.emit({ type: 'validation', phase: 'done', cases: i.caseIds.length, done: i.caseIds.length, meanDice, summaryFile });
  return { summaryFile, meanDice, cases: i.caseIds.length };
}
