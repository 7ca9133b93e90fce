// The CPU-bound stages of predicting one case, as plain functions of cloneable data so that they
// run the same in-line or in a worker thread (case-work.ts): before the network, read the channel
// files and preprocess (nnU-Net's preprocessor.run_case); after it, export the logits to the input
// geometry (export_prediction_from_logits) and, for the server, encode the outputs (.nii.gz, .npz).
import { DatasetError } from '../dataset/errors.js';
import type { DatasetJson } from '../dataset/dataset-json.js';
import { LabelManager } from '../dataset/labels.js';
import { segmentationDatatype } from '../evaluation/postprocessing.js';
import { encodeNifti } from '../io/nifti.js';
import { encodeNpz } from '../io/npz.js';
import type { Configuration, Plans } from '../planning/plans.js';
import { readRawCase } from '../preprocessing/case-files.js';
import { preprocessCase, type CaseProperties } from '../preprocessing/preprocessor.js';
import { exportPrediction, type ExportedPrediction } from './export-prediction.js';
import type { Logits } from './predict-logits.js';
import type { Shape3 } from './volume-ops.js';

/** What the stages need of a loaded model: plain data (no sessions, no classes), so it crosses threads. */
export interface CaseModelSpec {
  plans: Plans;
  configurationName: string;
  configuration: Configuration;
  datasetJson: Pick<DatasetJson, 'labels' | 'regions_class_order'>;
  /** Image channels the model expects (without cascade channels). */
  imageChannels: number;
}

/** Geometry of the input image, which the segmentation file keeps. */
export interface ReferenceGeometry {
  shape: [number, number, number];
  spacing: [number, number, number];
  affine: number[][];
}

export interface PreprocessTask {
  spec: CaseModelSpec;
  files: string[];
  /** Previous-stage segmentation (raw geometry) for a cascade configuration. */
  previousStage?: ArrayLike<number>;
}

export interface PreparedCase {
  /** float32 (c, x, y, z) on the network grid, transposed axis order. */
  data: Float32Array;
  channels: number;
  shape: Shape3;
  properties: CaseProperties;
  reference: ReferenceGeometry;
  readS: number;
  preprocessS: number;
}

export interface ExportTask {
  spec: CaseModelSpec;
  logits: Logits;
  properties: CaseProperties;
  reference: ReferenceGeometry;
  saveProbabilities: boolean;
  /** Also encode the outputs as the server streams them: segmentation .nii.gz, probabilities .npz. */
  encode?: { segmentation: boolean; probabilities: boolean };
}

export interface EncodedOutputs {
  segmentation?: Uint8Array;
  probabilities?: Uint8Array;
}

export interface FinishedCase extends ExportedPrediction {
  encoded: EncodedOutputs;
  /** Export and encoding together. */
  exportS: number;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Reads the channel files and preprocesses them as training did. */
export async function preprocessStage(task: PreprocessTask): Promise<PreparedCase> {
  const { spec, files } = task;
  let t = performance.now();
  const { images, input } = await readRawCase(files, undefined);
  if (images.length !== spec.imageChannels) {
    throw new DatasetError(`the case has ${images.length} channel(s) but the model expects ${spec.imageChannels} (dataset.json channel_names)`, files[0]);
  }
  const affine = (input.nibabel_stuff as { original_affine: number[][] }).original_affine;
  const reference: ReferenceGeometry = { shape: input.shape as ReferenceGeometry['shape'], spacing: input.spacing as ReferenceGeometry['spacing'], affine };
  const readS = seconds(t);
  t = performance.now();
  const isCascade = Boolean(spec.configuration.previous_stage);
  if (isCascade && !task.previousStage) {
    throw new DatasetError(`configuration ${spec.configurationName} is a cascade stage: give the previous stage's segmentation (-prev_stage_predictions)`);
  }
  const labels = LabelManager.fromDatasetJson(spec.datasetJson);
  const pre = preprocessCase(images, undefined, { spacing: reference.spacing, shape: reference.shape }, spec.plans, spec.configuration, labels, {
    withoutSegmentation: !isCascade,
    previousStageSegmentation: isCascade ? task.previousStage : undefined,
  });
  return { data: pre.data, channels: pre.channels, shape: pre.shape as Shape3, properties: pre.properties, reference, readS, preprocessS: seconds(t) };
}

/** Logits on the network grid → segmentation (and probabilities) in the input's geometry, encoded when asked. */
export function exportStage(task: ExportTask): FinishedCase {
  const t = performance.now();
  const { spec, reference } = task;
  const labels = LabelManager.fromDatasetJson(spec.datasetJson);
  const exported = exportPrediction(task.logits, task.properties, spec.plans, spec.configuration, labels, { saveProbabilities: task.saveProbabilities });
  const encoded: EncodedOutputs = {};
  if (task.encode?.segmentation) {
    const image = { data: exported.segmentation, shape: reference.shape, channels: 1, spacing: reference.spacing, affine: reference.affine };
    encoded.segmentation = encodeNifti(image, { datatype: segmentationDatatype(exported.segmentation) }, true);
  }
  if (task.encode?.probabilities && exported.probabilities) {
    const s = exported.shape;
    const classes = exported.probabilities.length / (s[0] * s[1] * s[2]);
    encoded.probabilities = encodeNpz({ probabilities: { dtype: 'float32', shape: [classes, ...s], data: exported.probabilities } }, { compress: true });
  }
  return { ...exported, encoded, exportS: seconds(t) };
}
