// Hand-written validation of plans configurations: every key of a resolved configuration is checked
// for type and shape so that a bad plans file fails at load with the key and the reason, not deep
// inside preprocessing or training. Also converts pre-`architecture` v2 configurations like PlansManager.
import { DatasetError } from '../dataset/errors.js';
import type { Configuration, IntensityProperties, StoredConfiguration } from './plans.js';

type Obj = Record<string, unknown>;

const isRecord = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;
const isFinitePositive = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0;
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

function fail(file: string | undefined, key: string, reason: string): never {
  throw new DatasetError(`${key}: ${reason}`, file);
}

type Check = (v: unknown, key: string, file: string | undefined) => void;

const string: Check = (v, key, file) => {
  if (typeof v !== 'string' || v.length === 0) fail(file, key, `must be a non-empty string, got ${show(v)}`);
};
const boolean: Check = (v, key, file) => {
  if (typeof v !== 'boolean') fail(file, key, `must be true or false, got ${show(v)}`);
};
const positiveInt: Check = (v, key, file) => {
  if (!isPositiveInt(v)) fail(file, key, `must be a positive integer, got ${show(v)}`);
};
const list =
  (item: (x: unknown) => boolean, what: string): Check =>
  (v, key, file) => {
    if (!Array.isArray(v) || v.length === 0 || !v.every(item)) fail(file, key, `must be a non-empty list of ${what}, got ${show(v)}`);
  };
const nullableString: Check = (v, key, file) => {
  if (v !== null && typeof v !== 'string') fail(file, key, `must be a string or null, got ${show(v)}`);
};
const nullableRecord: Check = (v, key, file) => {
  if (v !== null && !isRecord(v)) fail(file, key, `must be an object or null, got ${show(v)}`);
};
const resamplingKwargs: Check = (v, key, file) => {
  if (!isRecord(v)) fail(file, key, `must be an object of resampling keyword arguments, got ${show(v)}`);
  if ('is_seg' in v) boolean(v.is_seg, `${key}.is_seg`, file);
  for (const k of ['order', 'order_z']) {
    if (k in v && !(typeof v[k] === 'number' && Number.isInteger(v[k]) && (v[k] as number) >= 0 && (v[k] as number) <= 5)) {
      fail(file, `${key}.${k}`, `must be a spline order 0..5, got ${show(v[k])}`);
    }
  }
  if ('force_separate_z' in v && v.force_separate_z !== null && typeof v.force_separate_z !== 'boolean') {
    fail(file, `${key}.force_separate_z`, `must be true, false or null, got ${show(v.force_separate_z)}`);
  }
};
const stage: Check = (v, key, file) => {
  const ok = typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
  if (!ok) fail(file, key, `must be a configuration name or a list of them, got ${show(v)}`);
};

const CONFIGURATION_CHECKS: Record<string, Check> = {
  data_identifier: string,
  preprocessor_name: string,
  batch_size: positiveInt,
  patch_size: list(isPositiveInt, 'positive integers'),
  median_image_size_in_voxels: list((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0, 'non-negative numbers'),
  spacing: list(isFinitePositive, 'positive numbers'),
  normalization_schemes: list((x) => typeof x === 'string' && x.length > 0, 'scheme names'),
  use_mask_for_norm: list((x) => typeof x === 'boolean', 'booleans'),
  resampling_fn_data: string,
  resampling_fn_seg: string,
  resampling_fn_data_kwargs: resamplingKwargs,
  resampling_fn_seg_kwargs: resamplingKwargs,
  resampling_fn_probabilities: string,
  resampling_fn_probabilities_kwargs: resamplingKwargs,
  architecture: (v, key, file) => {
    if (!isRecord(v)) fail(file, key, `must be an object, got ${show(v)}`);
  },
  batch_dice: boolean,
};

const OPTIONAL_CHECKS: Record<string, Check> = {
  next_stage: stage,
  previous_stage: string,
  inherits_from: string,
};

/** Checks the keys a stored (possibly partial) configuration has. */
export function validateStoredConfiguration(c: StoredConfiguration, key: string, file?: string): void {
  const obj = c as Obj;
  for (const [k, check] of Object.entries({ ...CONFIGURATION_CHECKS, ...OPTIONAL_CHECKS })) {
    if (k in obj) check(obj[k], `${key}.${k}`, file);
  }
}

const KNOWN_UNETS = ['PlainConvUNet', 'ResidualEncoderUNet'];

function validateArchitecture(arch: Obj, dim: number, key: string, file?: string): void {
  string(arch.network_class_name, `${key}.network_class_name`, file);
  if (!isRecord(arch.arch_kwargs)) fail(file, `${key}.arch_kwargs`, `must be an object, got ${show(arch.arch_kwargs)}`);
  const req = arch._kw_requires_import;
  if (!Array.isArray(req) || !req.every((x) => typeof x === 'string')) fail(file, `${key}._kw_requires_import`, `must be a list of keyword names, got ${show(req)}`);
  const className = (arch.network_class_name as string).split('.').pop() as string;
  // Custom architectures may take other keywords; only nnU-Net's own U-Nets are checked in depth.
  if (!KNOWN_UNETS.includes(className)) return;
  const kw = arch.arch_kwargs;
  const k = `${key}.arch_kwargs`;
  positiveInt(kw.n_stages, `${k}.n_stages`, file);
  const n = kw.n_stages as number;
  const perStage = (name: string, length: number, item: (x: unknown) => boolean, what: string) => {
    const v = kw[name];
    if (!Array.isArray(v) || v.length !== length || !v.every(item)) fail(file, `${k}.${name}`, `must be ${length} ${what}, got ${show(v)}`);
  };
  const tuple = (x: unknown) => Array.isArray(x) && x.length === dim && x.every(isPositiveInt);
  perStage('features_per_stage', n, isPositiveInt, 'positive integers (one per stage)');
  perStage('kernel_sizes', n, tuple, `lists of ${dim} positive integers (one per stage)`);
  perStage('strides', n, tuple, `lists of ${dim} positive integers (one per stage)`);
  perStage(className === 'PlainConvUNet' ? 'n_conv_per_stage' : 'n_blocks_per_stage', n, isPositiveInt, 'positive integers (one per stage)');
  perStage('n_conv_per_stage_decoder', n - 1, isPositiveInt, 'positive integers (one per decoder stage)');
  string(kw.conv_op, `${k}.conv_op`, file);
  boolean(kw.conv_bias, `${k}.conv_bias`, file);
  for (const name of ['norm_op', 'dropout_op', 'nonlin']) nullableString(kw[name], `${k}.${name}`, file);
  for (const name of ['norm_op_kwargs', 'dropout_op_kwargs', 'nonlin_kwargs']) nullableRecord(kw[name], `${k}.${name}`, file);
}

/** Checks a resolved configuration completely and returns it typed. */
export function validateConfiguration(c: StoredConfiguration, key: string, file?: string): Configuration {
  const obj = c as Obj;
  for (const [k, check] of Object.entries(CONFIGURATION_CHECKS)) {
    if (!(k in obj)) fail(file, `${key}.${k}`, 'required key is missing');
    check(obj[k], `${key}.${k}`, file);
  }
  for (const [k, check] of Object.entries(OPTIONAL_CHECKS)) if (k in obj) check(obj[k], `${key}.${k}`, file);
  const dim = (obj.patch_size as number[]).length;
  if (dim !== 2 && dim !== 3) fail(file, `${key}.patch_size`, `must have 2 or 3 entries, got ${dim}`);
  if ((obj.spacing as number[]).length !== dim) fail(file, `${key}.spacing`, `must have ${dim} entries like patch_size, got ${(obj.spacing as number[]).length}`);
  const channels = (obj.normalization_schemes as string[]).length;
  if ((obj.use_mask_for_norm as boolean[]).length !== channels) {
    fail(file, `${key}.use_mask_for_norm`, `must have one entry per channel (${channels}), got ${(obj.use_mask_for_norm as boolean[]).length}`);
  }
  validateArchitecture(obj.architecture as Obj, dim, `${key}.architecture`, file);
  return c as Configuration;
}

export function validateIntensityProperties(p: unknown, key: string, file?: string): IntensityProperties {
  if (!isRecord(p)) fail(file, key, `must be an object of intensity statistics, got ${show(p)}`);
  for (const k of ['max', 'mean', 'median', 'min', 'percentile_00_5', 'percentile_99_5', 'std']) {
    if (typeof p[k] !== 'number' || !Number.isFinite(p[k])) fail(file, `${key}.${k}`, `must be a finite number, got ${show(p[k])}`);
  }
  return p as unknown as IntensityProperties;
}

/**
 * Builds the `architecture` block of a configuration written before nnU-Net v2.4 (UNet_class_name,
 * n_conv_per_stage_encoder, pool_op_kernel_sizes, ...), as PlansManager's ConfigurationManager does.
 */
export function convertLegacyConfiguration(c: Obj, key: string, file?: string): StoredConfiguration {
  const name = c.UNet_class_name;
  const classes: Record<string, string> = {
    PlainConvUNet: 'dynamic_network_architectures.architectures.unet.PlainConvUNet',
    ResidualEncoderUNet: 'dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet',
  };
  if (typeof name !== 'string' || !(name in classes)) {
    fail(file, `${key}.UNet_class_name`, `only PlainConvUNet and ResidualEncoderUNet plans can be converted, got ${show(name)}`);
  }
  const encoder = c.n_conv_per_stage_encoder;
  const patch = c.patch_size;
  if (!Array.isArray(encoder)) fail(file, `${key}.n_conv_per_stage_encoder`, `must be a list, got ${show(encoder)}`);
  if (!Array.isArray(patch)) fail(file, `${key}.patch_size`, `must be a list, got ${show(patch)}`);
  const dim = patch.length;
  const base = c.UNet_base_num_features as number;
  const max = c.unet_max_num_features as number;
  const out: Obj = { ...c };
  for (const k of ['UNet_class_name', 'UNet_base_num_features', 'n_conv_per_stage_encoder', 'n_conv_per_stage_decoder', 'num_pool_per_axis', 'pool_op_kernel_sizes', 'conv_kernel_sizes', 'unet_max_num_features']) {
    delete out[k];
  }
  out.architecture = {
    network_class_name: classes[name],
    arch_kwargs: {
      n_stages: encoder.length,
      features_per_stage: encoder.map((_, i) => Math.min(base * 2 ** i, max)),
      conv_op: `torch.nn.modules.conv.Conv${dim}d`,
      kernel_sizes: structuredClone(c.conv_kernel_sizes),
      strides: structuredClone(c.pool_op_kernel_sizes),
      [name === 'PlainConvUNet' ? 'n_conv_per_stage' : 'n_blocks_per_stage']: structuredClone(encoder),
      n_conv_per_stage_decoder: structuredClone(c.n_conv_per_stage_decoder),
      conv_bias: true,
      norm_op: `torch.nn.modules.instancenorm.InstanceNorm${dim}d`,
      norm_op_kwargs: { eps: 1e-5, affine: true },
      dropout_op: null,
      dropout_op_kwargs: null,
      nonlin: 'torch.nn.LeakyReLU',
      nonlin_kwargs: { inplace: true },
    },
    _kw_requires_import: ['conv_op', 'norm_op', 'dropout_op', 'nonlin'],
  };
  return out as StoredConfiguration;
}
