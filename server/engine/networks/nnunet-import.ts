// Imports a trained nnU-Net v2 model: reads checkpoint_{final,best}.pth (REFERENCE §6.4) without
// libtorch, builds the network from the checkpoint's own plans + configuration, loads
// network_weights (nnU-Net's duplicate keys accepted and ignored) and returns what inference needs.
import { readTorchCheckpoint, toPlain, TorchTensor } from '../../io/torch-checkpoint.js';
import { parsePlans, type Plans } from '../../planning/plans.js';
import type { LoadReport } from '../nn/module.js';
import { ArchitectureError, buildNetworkFromPlans } from './from-plans.js';
import type { UNet } from './unet.js';

export interface NnunetImportOptions {
  /** Plans to build from instead of the checkpoint's init_args.plans (e.g. the model folder's plans.json). */
  plans?: Plans;
  /** Configuration instead of init_args.configuration. */
  configuration?: string;
  /** Build with deep supervision on (to continue training); default off, as nnU-Net's predictor. */
  deepSupervision?: boolean;
}

export interface ImportedNnunetModel {
  network: UNet;
  /** e.g. "nnUNetTrainer"; nnU-Net instantiates this class to build the network. */
  trainerName: string;
  configuration: string;
  /** Axes (0-based, spatial) test-time mirroring may flip; null when the checkpoint has none. */
  inferenceAllowedMirroringAxes: number[] | null;
  plans: Plans;
  fold: number | string | null;
  datasetJson: Record<string, unknown> | null;
  inputChannels: number;
  numClasses: number;
  report: LoadReport;
}

export class NnunetImportError extends Error {
  constructor(message: string, readonly file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'NnunetImportError';
  }
}

const isMap = (v: unknown): v is Map<unknown, unknown> => v instanceof Map;

/** A convolution weight ([out, in, ...kernel], 2D or 3D) that must exist under `key`. */
function convWeight(weights: Map<string, TorchTensor>, key: string, file?: string): TorchTensor {
  const w = weights.get(key);
  if (!(w instanceof TorchTensor) || (w.shape.length !== 4 && w.shape.length !== 5)) {
    throw new NnunetImportError(`network_weights has no convolution weight '${key}'; is this a PlainConvUNet/ResidualEncoderUNet checkpoint?`, file);
  }
  return w;
}

/**
 * Builds and loads the network of an nnU-Net v2 checkpoint. `source` is a .pth path or the value
 * readTorchCheckpoint returned. Input channels and classes come from the weights themselves (the
 * first conv and the seg heads), which also covers cascades and region-based models.
 */
export async function loadNnunetCheckpointIntoNetwork(source: string | unknown, o: NnunetImportOptions = {}): Promise<ImportedNnunetModel> {
  const file = typeof source === 'string' ? source : undefined;
  const ck = typeof source === 'string' ? await readTorchCheckpoint(source) : source;
  if (!isMap(ck)) throw new NnunetImportError('not an nnU-Net checkpoint: the pickled object is not a dict', file);
  const weights = ck.get('network_weights');
  if (!isMap(weights)) throw new NnunetImportError("not an nnU-Net checkpoint: no 'network_weights' dict", file);
  const initArgs = ck.get('init_args');
  const plainInit = isMap(initArgs) ? (toPlain(initArgs) as Record<string, unknown>) : {};

  const configuration = o.configuration ?? plainInit.configuration;
  if (typeof configuration !== 'string') throw new NnunetImportError('the checkpoint names no configuration (init_args.configuration); pass one', file);
  let plans = o.plans;
  if (!plans) {
    if (plainInit.plans === undefined) throw new NnunetImportError('the checkpoint carries no plans (init_args.plans); pass the model folder plans.json', file);
    plans = parsePlans(plainInit.plans, file ? `${file} init_args.plans` : 'init_args.plans');
  }

  const w = weights as Map<string, TorchTensor>;
  const residual = w.has('encoder.stem.convs.0.conv.weight');
  const first = residual ? 'encoder.stem.convs.0.conv.weight' : 'encoder.stages.0.0.convs.0.conv.weight';
  const heads = [...w.keys()].filter((k) => /^decoder\.seg_layers\.\d+\.weight$/.test(k));
  if (heads.length === 0) throw new NnunetImportError('network_weights has no decoder.seg_layers.*.weight', file);
  const inputChannels = convWeight(w, first, file).shape[1];
  const numClasses = convWeight(w, heads[0], file).shape[0];
  let network: UNet;
  try {
    network = buildNetworkFromPlans(plans, configuration, inputChannels, numClasses, { deepSupervision: o.deepSupervision ?? false, initialize: false });
  } catch (err) {
    if (err instanceof ArchitectureError) throw new NnunetImportError(`${err.message} (configuration ${configuration})`, file);
    throw err;
  }
  const report = network.loadStateDict(w);

  const axes = ck.get('inference_allowed_mirroring_axes');
  const trainerName = ck.get('trainer_name');
  const fold = plainInit.fold;
  return {
    network,
    trainerName: typeof trainerName === 'string' ? trainerName : 'nnUNetTrainer',
    configuration,
    inferenceAllowedMirroringAxes: Array.isArray(axes) ? axes.map(Number) : null,
    plans,
    fold: typeof fold === 'number' || typeof fold === 'string' ? fold : null,
    datasetJson: typeof plainInit.dataset_json === 'object' && plainInit.dataset_json !== null ? (plainInit.dataset_json as Record<string, unknown>) : null,
    inputChannels,
    numClasses,
    report,
  };
}
