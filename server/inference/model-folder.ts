// Loads a trained model folder (nnU-Net v2 layout, REFERENCE §6.5) for inference with
// onnxruntime: plans.json, dataset.json and per fold a network. A fold with only nnU-Net's
// checkpoint_*.pth (or our checkpoint_*.safetensors) is converted to ONNX once and cached as
// fold_X/model.onnx + model.onnx.json (mirroring axes, source); no libtorch is needed for either.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import { parseDatasetJson, type DatasetJson } from '../dataset/dataset-json.js';
import { LabelManager } from '../dataset/labels.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { buildNetworkFromPlans } from '../engine/networks/from-plans.js';
import { loadNnunetCheckpointIntoNetwork } from '../engine/networks/nnunet-import.js';
import { exportOnnx } from '../engine/onnx/export.js';
import { getConfiguration, loadPlans, type Configuration, type Plans } from '../planning/plans.js';
import { OnnxRunner, type RunnerOptions } from './onnx-runner.js';

export interface ModelFold {
  fold: string;
  runner: OnnxRunner;
  mirrorAxes: number[];
}

export interface LoadedModel {
  folder: string;
  trainer: string;
  plansName: string;
  configurationName: string;
  plans: Plans;
  configuration: Configuration;
  datasetJson: DatasetJson;
  labels: LabelManager;
  folds: ModelFold[];
  /** Image channels the model expects (without cascade channels). */
  imageChannels: number;
}

export interface LoadModelOptions extends RunnerOptions {
  /** Folds to use ("0".."4", "all"); default: every fold_N folder (not fold_all), as nnU-Net. */
  folds?: string[];
  /** Checkpoint name without extension (default checkpoint_final). */
  checkpoint?: string;
}

interface OnnxSidecar {
  source: string;
  sourceSize: number;
  sourceMtimeMs: number;
  mirrorAxes: number[];
  trainer: string;
  configuration: string;
}

function readJsonFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DatasetError(`cannot read: ${(err as Error).message}`, file);
  }
}

/** Available folds of a model folder, nnU-Net's auto-detection: fold_N folders, fold_all excluded. */
export function detectFolds(folder: string): string[] {
  return readdirSync(folder)
    .map((n) => /^fold_(\d+)$/.exec(n)?.[1])
    .filter((f): f is string => f !== undefined)
    .sort((a, b) => Number(a) - Number(b));
}

/**
 * Writes fold_X/model.onnx and its sidecar (mirroring axes, the checkpoint it came from), so the
 * loader uses it instead of converting the checkpoint again. Throws when the folder is read-only.
 */
export async function writeFoldOnnx(foldDir: string, bytes: Uint8Array, o: { source: string; mirrorAxes: number[]; trainer: string; configuration: string }): Promise<void> {
  const stat = existsSync(o.source) ? statSync(o.source) : undefined;
  const sidecar: OnnxSidecar = { source: basename(o.source), sourceSize: stat?.size ?? 0, sourceMtimeMs: stat?.mtimeMs ?? 0, mirrorAxes: o.mirrorAxes, trainer: o.trainer, configuration: o.configuration };
  const onnxFile = join(foldDir, 'model.onnx');
  await writeFileAtomic(onnxFile, bytes);
  await writeFileAtomic(`${onnxFile}.json`, JSON.stringify(sidecar, null, 2));
}

/** The ONNX bytes and mirroring axes of one fold, converting (and caching) a checkpoint when needed. */
async function foldNetwork(foldDir: string, checkpoint: string, plans: Plans, configurationName: string, numClasses: number, imageChannels: number): Promise<{ model: string | Uint8Array; sidecar: OnnxSidecar }> {
  const pth = join(foldDir, `${checkpoint}.pth`);
  const ours = join(foldDir, `${checkpoint}.safetensors`);
  const source = existsSync(ours) ? ours : existsSync(pth) ? pth : undefined;
  const onnxFile = join(foldDir, 'model.onnx');
  const sidecarFile = `${onnxFile}.json`;
  const stat = source ? statSync(source) : undefined;
  if (existsSync(onnxFile) && existsSync(sidecarFile)) {
    const sidecar = readJsonFile(sidecarFile) as OnnxSidecar;
    const fresh = !source || (sidecar.source === basename(source) && sidecar.sourceSize === stat!.size && sidecar.sourceMtimeMs === stat!.mtimeMs);
    if (fresh) return { model: onnxFile, sidecar };
  }
  if (!source) throw new DatasetError(`no ${checkpoint}.pth, ${checkpoint}.safetensors or model.onnx in the fold folder`, foldDir);

  let bytes: Uint8Array;
  let mirrorAxes: number[];
  let trainer: string;
  if (source === pth) {
    const imported = await loadNnunetCheckpointIntoNetwork(pth, { plans, configuration: configurationName });
    bytes = exportOnnx(imported.network, { metadata: { source: basename(pth), trainer: imported.trainerName } });
    mirrorAxes = imported.inferenceAllowedMirroringAxes ?? [];
    trainer = imported.trainerName;
  } else {
    const ck = await loadCheckpoint(join(foldDir, checkpoint));
    const cascadeChannels = getConfiguration(plans, configurationName).previous_stage ? numClasses - 1 : 0;
    const network = buildNetworkFromPlans(plans, configurationName, imageChannels + cascadeChannels, numClasses, { deepSupervision: false, initialize: false });
    network.loadStateDict(ck.weights);
    bytes = exportOnnx(network, { metadata: { source: basename(ours), trainer: ck.trainerState.trainer_name } });
    mirrorAxes = ck.trainerState.inference_allowed_mirroring_axes;
    trainer = ck.trainerState.trainer_name;
  }
  const sidecar: OnnxSidecar = { source: basename(source), sourceSize: stat!.size, sourceMtimeMs: stat!.mtimeMs, mirrorAxes, trainer, configuration: configurationName };
  try {
    await writeFoldOnnx(foldDir, bytes, { source, mirrorAxes, trainer, configuration: configurationName });
  } catch {
    // a read-only model repository: use the converted model from memory, convert again next time
  }
  return { model: bytes, sidecar };
}

/** Loads `folder` (`.../DatasetXXX_Name/<Trainer>__<Plans>__<configuration>`). */
export async function loadModelFolder(folder: string, o: LoadModelOptions = {}): Promise<LoadedModel> {
  if (!existsSync(folder)) throw new DatasetError('model folder does not exist', folder);
  const parts = basename(folder).split('__');
  if (parts.length !== 3) throw new DatasetError('a model folder is named <Trainer>__<Plans>__<configuration>', folder);
  const [trainer, plansName, configurationName] = parts;
  const plans = await loadPlans(join(folder, 'plans.json'));
  const configuration = getConfiguration(plans, configurationName);
  const { json: datasetJson, problems } = parseDatasetJson(readJsonFile(join(folder, 'dataset.json')));
  if (problems.length > 0) throw new DatasetError(`invalid dataset.json: ${problems.join('; ')}`, join(folder, 'dataset.json'));
  const labels = LabelManager.fromDatasetJson(datasetJson);
  const imageChannels = Object.keys(datasetJson.channel_names).length;
  const folds = o.folds ?? detectFolds(folder);
  if (folds.length === 0) throw new DatasetError('no fold_N folders; train a fold or pass folds explicitly (e.g. all)', folder);
  const loaded: ModelFold[] = [];
  for (const fold of folds) {
    const foldDir = join(folder, `fold_${fold}`);
    if (!existsSync(foldDir)) throw new DatasetError(`fold ${fold} was requested but fold_${fold} does not exist (available: ${detectFolds(folder).join(', ') || 'none'})`, folder);
    const { model, sidecar } = await foldNetwork(foldDir, o.checkpoint ?? 'checkpoint_final', plans, configurationName, labels.numSegmentationHeads, imageChannels);
    loaded.push({ fold, runner: await OnnxRunner.load(model, join(foldDir, 'model.onnx'), o), mirrorAxes: sidecar.mirrorAxes });
  }
  return { folder, trainer, plansName, configurationName, plans, configuration, datasetJson, labels, folds: loaded, imageChannels };
}

export async function releaseModel(model: LoadedModel): Promise<void> {
  await Promise.all(model.folds.map((f) => f.runner.release()));
}
