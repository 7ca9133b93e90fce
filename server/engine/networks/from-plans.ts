// Builds the network a plans configuration describes, as nnU-Net's get_network_from_plans: the
// class from `network_class_name`, its keywords from `arch_kwargs` (the Python class paths of
// conv_op / norm_op / dropout_op / nonlin resolved to our layers), plus channels and classes.
import { getConfiguration, type Architecture, type Plans } from '../../planning/plans.js';
import type { ConvSpec } from './blocks.js';
import { PlainConvUNet, ResidualEncoderUNet, type UNet, type UNetArchitecture, type UNetOptions } from './unet.js';

export class ArchitectureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchitectureError';
  }
}

type Kwargs = Record<string, unknown>;

const lastName = (path: string) => path.split('.').pop() as string;
const isRecord = (v: unknown): v is Kwargs => typeof v === 'object' && v !== null && !Array.isArray(v);

function numberKw(kwargs: Kwargs | null | undefined, key: string, fallback: number, where: string): number {
  const v = kwargs?.[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ArchitectureError(`${where}.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function positiveInts(v: unknown, length: number, key: string): number[] {
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => Number.isInteger(x) && x > 0)) {
    throw new ArchitectureError(`arch_kwargs.${key} must be ${length} positive integers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

function perAxis(v: unknown, n: number, dims: number, key: string): number[][] {
  if (!Array.isArray(v) || v.length !== n) throw new ArchitectureError(`arch_kwargs.${key} must have ${n} entries (one per stage), got ${JSON.stringify(v)}`);
  // A bare int means the same value on every axis, as dynamic_network_architectures allows.
  return v.map((e, s) => positiveInts(typeof e === 'number' ? new Array(dims).fill(e) : e, dims, `${key}[${s}]`));
}

/** torch.nn.{Conv,InstanceNorm,Dropout,LeakyReLU,...} paths and their kwargs → our block spec. */
export function resolveConvSpec(kw: Kwargs): ConvSpec {
  const conv = String(kw.conv_op ?? '');
  const match = /^Conv([23])d$/.exec(lastName(conv));
  if (!match) throw new ArchitectureError(`conv_op ${JSON.stringify(kw.conv_op)} is not supported (Conv2d or Conv3d)`);
  const dims = Number(match[1]) as 2 | 3;

  let norm: ConvSpec['norm'] = null;
  if (kw.norm_op !== null && kw.norm_op !== undefined) {
    const name = lastName(String(kw.norm_op));
    if (name !== `InstanceNorm${dims}d`) {
      throw new ArchitectureError(`norm_op ${JSON.stringify(kw.norm_op)} is not supported (InstanceNorm${dims}d, as nnU-Net's plans use)`);
    }
    const nk = isRecord(kw.norm_op_kwargs) ? kw.norm_op_kwargs : {};
    // torch's InstanceNorm defaults to affine=False; nnU-Net's plans always say affine=True.
    norm = { eps: numberKw(nk, 'eps', 1e-5, 'norm_op_kwargs'), affine: nk.affine === true };
  }

  let dropout: ConvSpec['dropout'] = null;
  if (kw.dropout_op !== null && kw.dropout_op !== undefined) {
    const name = lastName(String(kw.dropout_op));
    if (!/^Dropout([123]d)?$/.test(name)) throw new ArchitectureError(`dropout_op ${JSON.stringify(kw.dropout_op)} is not supported`);
    const p = numberKw(isRecord(kw.dropout_op_kwargs) ? kw.dropout_op_kwargs : null, 'p', 0.5, 'dropout_op_kwargs');
    dropout = { p, channelwise: name === 'Dropout2d' || name === 'Dropout3d' };
  }

  let nonlin: ConvSpec['nonlin'] = null;
  if (kw.nonlin !== null && kw.nonlin !== undefined) {
    const name = lastName(String(kw.nonlin));
    const nk = isRecord(kw.nonlin_kwargs) ? kw.nonlin_kwargs : null;
    if (name === 'LeakyReLU') nonlin = { kind: 'leaky_relu', negativeSlope: numberKw(nk, 'negative_slope', 0.01, 'nonlin_kwargs') };
    else if (name === 'ReLU') nonlin = { kind: 'relu' };
    else throw new ArchitectureError(`nonlin ${JSON.stringify(kw.nonlin)} is not supported (LeakyReLU or ReLU)`);
  }
  // dynamic_network_architectures' default is conv_bias=False.
  return { dims, bias: kw.conv_bias === true, norm, dropout, nonlin };
}

/** The plans `architecture` block resolved into what our network classes take. */
export function resolveArchitecture(architecture: Pick<Architecture, 'network_class_name' | 'arch_kwargs'>): UNetArchitecture & { className: 'PlainConvUNet' | 'ResidualEncoderUNet' } {
  const className = lastName(architecture.network_class_name);
  if (className !== 'PlainConvUNet' && className !== 'ResidualEncoderUNet') {
    throw new ArchitectureError(`network_class_name ${architecture.network_class_name} is not supported (PlainConvUNet or ResidualEncoderUNet)`);
  }
  const kw = architecture.arch_kwargs as Kwargs;
  const spec = resolveConvSpec(kw);
  const n = kw.n_stages;
  if (!Number.isInteger(n) || (n as number) < 2) throw new ArchitectureError(`arch_kwargs.n_stages must be an integer ≥ 2, got ${JSON.stringify(n)}`);
  const nStages = n as number;
  const expand = (key: string, len: number) => (typeof kw[key] === 'number' ? new Array(len).fill(kw[key]) : kw[key]);
  const perStageKey = className === 'PlainConvUNet' ? 'n_conv_per_stage' : 'n_blocks_per_stage';
  if (className === 'ResidualEncoderUNet') {
    const block = kw.block;
    if (block !== undefined && block !== null && lastName(String(block)) !== 'BasicBlockD') {
      throw new ArchitectureError(`block ${JSON.stringify(block)} is not supported (BasicBlockD)`);
    }
  }
  const stem = kw.stem_channels;
  return {
    className,
    networkClassName: architecture.network_class_name,
    nStages,
    featuresPerStage: positiveInts(expand('features_per_stage', nStages), nStages, 'features_per_stage'),
    kernelSizes: perAxis(expand('kernel_sizes', nStages), nStages, spec.dims, 'kernel_sizes'),
    strides: perAxis(expand('strides', nStages), nStages, spec.dims, 'strides'),
    perStage: positiveInts(expand(perStageKey, nStages), nStages, perStageKey),
    nConvPerStageDecoder: positiveInts(expand('n_conv_per_stage_decoder', nStages - 1), nStages - 1, 'n_conv_per_stage_decoder'),
    spec,
    ...(typeof stem === 'number' ? { stemChannels: stem } : {}),
  };
}

/** The network of a plans `architecture` block (REFERENCE §3.8), He-initialised unless told otherwise. */
export function buildNetwork(
  architecture: Pick<Architecture, 'network_class_name' | 'arch_kwargs'>,
  inputChannels: number,
  numClasses: number,
  o: UNetOptions = {},
): UNet {
  if (!Number.isInteger(inputChannels) || inputChannels < 1) throw new ArchitectureError(`input channels must be a positive integer, got ${inputChannels}`);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new ArchitectureError(`number of classes must be a positive integer, got ${numClasses}`);
  const a = resolveArchitecture(architecture);
  return a.className === 'PlainConvUNet'
    ? new PlainConvUNet(a, inputChannels, numClasses, o)
    : new ResidualEncoderUNet(a, inputChannels, numClasses, o);
}

/**
 * nnU-Net's get_network_from_plans for one configuration (inheritance resolved). inputChannels =
 * image channels (+ foreground labels for a cascade stage); numClasses = segmentation heads.
 */
export function buildNetworkFromPlans(
  plans: Plans,
  configurationName: string,
  inputChannels: number,
  numClasses: number,
  o: UNetOptions = {},
): UNet {
  const configuration = getConfiguration(plans, configurationName);
  return buildNetwork(configuration.architecture, inputChannels, numClasses, o);
}
