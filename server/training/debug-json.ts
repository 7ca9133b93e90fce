// debug.json as nnU-Net's _save_debug_information writes it (REFERENCE §5.7): the trainer's
// attributes as strings in Python's repr, sorted keys, plus hostname, device and library versions.
// We have no trainer object to dump, so the same keys are assembled from the fold's set-up.
import { hostname } from 'node:os';
import { writeFileAtomic } from '../io/atomic.js';
import { pythonFloatRepr } from '../util/python-json.js';
import { dumpPythonJson } from '../util/pyjson.js';
import type { TrainerOptions } from './trainer-options.js';
import type { AugmentationGeometry } from './rotation-config.js';

/** A tuple for pyRepr: printed with parentheses, as Python shows mirroring axes. */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

const quote = (s: string) => (s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`);

/** Python's repr of JSON-like data: None/True/False, single-quoted strings, tuples. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pythonFloatRepr(v);
  if (typeof v === 'string') return quote(v);
  if (v instanceof PyTuple) return v.items.length === 1 ? `(${pyRepr(v.items[0])},)` : `(${v.items.map(pyRepr).join(', ')})`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${quote(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

export interface DebugInfoInput {
  trainerName: string;
  options: TrainerOptions;
  plans: Record<string, unknown>;
  configurationName: string;
  configuration: Record<string, unknown>;
  datasetJson: Record<string, unknown>;
  fold: number | 'all';
  device: string;
  batchSize: number;
  numInputChannels: number;
  geometry: AugmentationGeometry;
  isCascaded: boolean;
  folderWithSegsFromPreviousStage: string | null;
  outputFolder: string;
  outputFolderBase: string;
  preprocessedFolder: string;
  preprocessedFolderBase: string;
  logFile: string;
  loss: string;
  networkClass: string;
  dataloaderTrain: string;
  dataloaderVal: string;
  currentEpoch: number;
  bestEma: number | null;
  gradScaler: boolean;
  disableCheckpointing: boolean;
  torchVersion: string;
  gpuName?: string;
}

/** The debug.json dictionary (values are strings, as nnU-Net writes str(attribute)). */
export function debugInfo(d: DebugInfoInput): Record<string, string> {
  const o = d.options;
  const { configurations: _configurations, ...globalPlans } = d.plans;
  const initKwargs = { plans: d.plans, configuration: d.configurationName, fold: d.fold, dataset_json: d.datasetJson, device: d.device };
  const dct: Record<string, string> = {
    _best_ema: pyRepr(d.bestEma),
    batch_size: pyRepr(d.batchSize),
    configuration_manager: pyRepr(d.configuration),
    configuration_name: d.configurationName,
    cudnn_version: 'None',
    current_epoch: pyRepr(d.currentEpoch),
    dataloader_train: d.dataloaderTrain,
    'dataloader_train.transform': 'None',
    dataloader_val: d.dataloaderVal,
    'dataloader_val.transform': 'None',
    dataset_json: pyRepr(d.datasetJson),
    device: d.device,
    disable_checkpointing: pyRepr(d.disableCheckpointing),
    enable_deep_supervision: pyRepr(o.enableDeepSupervision),
    fold: pyRepr(d.fold),
    folder_with_segs_from_previous_stage: d.folderWithSegsFromPreviousStage ?? 'None',
    grad_scaler: d.gradScaler ? '<GradScaler>' : 'None',
    hostname: hostname(),
    inference_allowed_mirroring_axes: d.geometry.inferenceAllowedMirroringAxes.length ? pyRepr(new PyTuple(d.geometry.inferenceAllowedMirroringAxes)) : 'None',
    initial_lr: pyRepr(o.initialLr),
    is_cascaded: pyRepr(d.isCascaded),
    is_ddp: 'False',
    label_manager: '<LabelManager>',
    local_rank: '0',
    log_file: d.logFile,
    logger: '<ProgressLog>',
    loss: d.loss,
    lr_scheduler: `<PolyLRScheduler initial_lr=${pyRepr(o.initialLr)} exponent=${pyRepr(o.lrExponent)}>`,
    my_init_kwargs: pyRepr(initKwargs),
    network: d.networkClass,
    num_epochs: pyRepr(o.numEpochs),
    num_input_channels: pyRepr(d.numInputChannels),
    num_iterations_per_epoch: pyRepr(o.numIterationsPerEpoch),
    num_val_iterations_per_epoch: pyRepr(o.numValIterationsPerEpoch),
    optimizer:
      `SGD (\nParameter Group 0\n    dampening: 0\n    initial_lr: ${pyRepr(o.initialLr)}\n    lr: ${pyRepr(o.initialLr)}\n` +
      `    maximize: False\n    momentum: ${pyRepr(o.momentum)}\n    nesterov: ${pyRepr(o.nesterov)}\n    weight_decay: ${pyRepr(o.weightDecay)}\n)`,
    output_folder: d.outputFolder,
    output_folder_base: d.outputFolderBase,
    oversample_foreground_percent: pyRepr(o.oversampleForegroundPercent),
    plans_manager: pyRepr(d.plans),
    preprocessed_dataset_folder: d.preprocessedFolder,
    preprocessed_dataset_folder_base: d.preprocessedFolderBase,
    probabilistic_oversampling: pyRepr(o.probabilisticOversampling),
    save_every: pyRepr(o.saveEvery),
    torch_version: d.torchVersion,
    was_initialized: 'True',
    weight_decay: pyRepr(o.weightDecay),
    // Ours, beyond nnU-Net's attributes: the trainer as data and the augmentation geometry.
    trainer_name: d.trainerName,
    trainer_options: JSON.stringify(o),
    do_dummy_2d_data_aug: pyRepr(d.geometry.dummy2d),
    rotation_for_DA: pyRepr(new PyTuple(d.geometry.rotationRange)),
    initial_patch_size: pyRepr(d.geometry.initialPatchSize),
    global_plans: pyRepr(globalPlans),
  };
  if (d.gpuName) dct.gpu_name = d.gpuName;
  return dct;
}

export async function writeDebugJson(file: string, d: DebugInfoInput): Promise<void> {
  await writeFileAtomic(file, dumpPythonJson(debugInfo(d)));
}
