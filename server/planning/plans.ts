// The one `Plans` type: nnU-Net v2's `<plans_name>.json` (REFERENCE §3.8), validated when read,
// configuration inheritance resolved like v2's PlansManager (parent dict updated with the child's
// keys, cycles refused) and written back with nnU-Net's key order and number spelling.
import { readFile } from 'node:fs/promises';
import { DatasetError } from '../dataset/errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { parsePythonJson, toPythonJson, type JsonPath } from '../util/python-json.js';
import { validateConfiguration, validateStoredConfiguration, validateIntensityProperties, convertLegacyConfiguration } from './plans-validate.js';

/** Dataset-level foreground intensity statistics of one channel (fingerprint §2). */
export interface IntensityProperties {
  max: number;
  mean: number;
  median: number;
  min: number;
  percentile_00_5: number;
  percentile_99_5: number;
  std: number;
}

/** Keyword arguments of `resample_data_or_seg_to_shape` (REFERENCE §4.3). */
export interface ResamplingKwargs {
  is_seg: boolean;
  order: number;
  order_z: number;
  force_separate_z: boolean | null;
  [extra: string]: unknown;
}

/**
 * Constructor keywords of the network. PlainConvUNet uses `n_conv_per_stage`, ResidualEncoderUNet
 * `n_blocks_per_stage`; the `*_op` and `nonlin` strings are Python import paths.
 */
export interface ArchitectureKwargs {
  n_stages: number;
  features_per_stage: number[];
  conv_op: string;
  kernel_sizes: number[][];
  strides: number[][];
  n_conv_per_stage?: number[];
  n_blocks_per_stage?: number[];
  n_conv_per_stage_decoder: number[];
  conv_bias: boolean;
  norm_op: string | null;
  norm_op_kwargs: Record<string, unknown> | null;
  dropout_op: string | null;
  dropout_op_kwargs: Record<string, unknown> | null;
  nonlin: string | null;
  nonlin_kwargs: Record<string, unknown> | null;
  [extra: string]: unknown;
}

export interface Architecture {
  network_class_name: string;
  arch_kwargs: ArchitectureKwargs;
  _kw_requires_import: string[];
}

/** A fully resolved configuration (after `inherits_from`); sizes and spacings in transposed axis order. */
export interface Configuration {
  data_identifier: string;
  preprocessor_name: string;
  batch_size: number;
  patch_size: number[];
  median_image_size_in_voxels: number[];
  /** Target spacing (mm); 2 entries for 2d configurations. */
  spacing: number[];
  normalization_schemes: string[];
  use_mask_for_norm: boolean[];
  resampling_fn_data: string;
  resampling_fn_seg: string;
  resampling_fn_data_kwargs: ResamplingKwargs;
  resampling_fn_seg_kwargs: ResamplingKwargs;
  resampling_fn_probabilities: string;
  resampling_fn_probabilities_kwargs: ResamplingKwargs;
  architecture: Architecture;
  batch_dice: boolean;
  next_stage?: string | string[];
  previous_stage?: string;
  [extra: string]: unknown;
}

/** A configuration as stored: complete, or a partial one that names its parent. */
export type StoredConfiguration = Partial<Configuration> & { inherits_from?: string };

export interface Plans {
  dataset_name: string;
  plans_name: string;
  original_median_spacing_after_transp: number[];
  original_median_shape_after_transp: number[];
  image_reader_writer: string;
  transpose_forward: number[];
  transpose_backward: number[];
  configurations: Record<string, StoredConfiguration>;
  experiment_planner_used: string;
  label_manager: string;
  foreground_intensity_properties_per_channel: Record<string, IntensityProperties>;
  [extra: string]: unknown;
}

/** Top-level keys in the order nnU-Net's planner writes them. */
const PLANS_KEY_ORDER = [
  'dataset_name',
  'plans_name',
  'original_median_spacing_after_transp',
  'original_median_shape_after_transp',
  'image_reader_writer',
  'transpose_forward',
  'transpose_backward',
  'configurations',
  'experiment_planner_used',
  'label_manager',
  'foreground_intensity_properties_per_channel',
] as const;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(file: string | undefined, key: string, reason: string): never {
  throw new DatasetError(`${key}: ${reason}`, file);
}

function expectString(obj: Record<string, unknown>, key: string, file?: string): string {
  const v = obj[key];
  if (typeof v !== 'string' || v.length === 0) fail(file, key, v === undefined ? 'required key is missing' : `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function expectNumbers(obj: Record<string, unknown>, key: string, file: string | undefined, check: (x: number) => boolean, what: string): number[] {
  const v = obj[key];
  if (v === undefined) fail(file, key, 'required key is missing');
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && check(x))) fail(file, key, `must be a list of ${what}, got ${JSON.stringify(v)}`);
  return v as number[];
}

function checkTranspose(forward: number[], backward: number[], file?: string): void {
  const isPermutation = (p: number[]) => p.length === 3 && [...p].sort().every((x, i) => x === i);
  if (!isPermutation(forward)) fail(file, 'transpose_forward', `must be a permutation of [0, 1, 2], got ${JSON.stringify(forward)}`);
  if (!isPermutation(backward) || !forward.every((axis, i) => backward[axis] === i)) {
    fail(file, 'transpose_backward', `must invert transpose_forward ${JSON.stringify(forward)}, got ${JSON.stringify(backward)}`);
  }
}

/**
 * Validates a parsed plans object and returns a typed copy (key order kept). Legacy configurations
 * (v2 before the `architecture` block) are converted as PlansManager does. Throws a DatasetError
 * naming the key and the reason.
 */
export function parsePlans(json: unknown, file?: string): Plans {
  if (!isRecord(json)) fail(file, '(root)', 'plans must be a JSON object');
  const raw = structuredClone(json);
  // Plans written before the rename keep the per-channel statistics under this name.
  if (!('foreground_intensity_properties_per_channel' in raw) && 'foreground_intensity_properties_by_modality' in raw) {
    raw.foreground_intensity_properties_per_channel = raw.foreground_intensity_properties_by_modality;
    delete raw.foreground_intensity_properties_by_modality;
  }
  expectString(raw, 'dataset_name', file);
  expectString(raw, 'plans_name', file);
  expectString(raw, 'image_reader_writer', file);
  expectString(raw, 'experiment_planner_used', file);
  expectString(raw, 'label_manager', file);
  expectNumbers(raw, 'original_median_spacing_after_transp', file, (x) => Number.isFinite(x) && x > 0, 'positive numbers');
  expectNumbers(raw, 'original_median_shape_after_transp', file, (x) => Number.isFinite(x) && x >= 0, 'non-negative numbers');
  const forward = expectNumbers(raw, 'transpose_forward', file, Number.isInteger, 'integers');
  const backward = expectNumbers(raw, 'transpose_backward', file, Number.isInteger, 'integers');
  checkTranspose(forward, backward, file);

  const props = raw.foreground_intensity_properties_per_channel;
  if (!isRecord(props)) fail(file, 'foreground_intensity_properties_per_channel', props === undefined ? 'required key is missing' : 'must be an object keyed by channel index');
  for (const [channel, p] of Object.entries(props)) validateIntensityProperties(p, `foreground_intensity_properties_per_channel.${channel}`, file);

  const configs = raw.configurations;
  if (!isRecord(configs) || Object.keys(configs).length === 0) fail(file, 'configurations', 'must be a non-empty object of named configurations');
  for (const [name, c] of Object.entries(configs)) {
    if (!isRecord(c)) fail(file, `configurations.${name}`, 'must be an object');
    const stored = !('architecture' in c) && 'UNet_class_name' in c ? convertLegacyConfiguration(c, `configurations.${name}`, file) : (c as StoredConfiguration);
    configs[name] = stored;
    validateStoredConfiguration(stored, `configurations.${name}`, file);
  }
  const plans = raw as Plans;
  // Resolving every configuration now reports a missing key or an inheritance cycle at load time.
  for (const name of Object.keys(configs)) getConfiguration(plans, name, file);
  return plans;
}

/**
 * The configuration `name` with `inherits_from` resolved: the parent (itself resolved) updated with
 * the child's own keys. The result is a validated deep copy.
 */
export function getConfiguration(plans: Plans, name: string, file?: string): Configuration {
  const resolved = resolveInheritance(plans, name, [], file);
  delete resolved.inherits_from;
  return validateConfiguration(resolved, `configurations.${name}`, file);
}

function resolveInheritance(plans: Plans, name: string, visited: string[], file?: string): StoredConfiguration {
  const stored = plans.configurations[name];
  if (stored === undefined) {
    fail(file, `configurations.${name}`, `no such configuration; the plans have ${Object.keys(plans.configurations).join(', ')}`);
  }
  const own = structuredClone(stored);
  const parent = own.inherits_from;
  if (parent === undefined) return own;
  if (parent === name || visited.includes(parent)) {
    fail(file, `configurations.${name}.inherits_from`, `circular inheritance: ${[...visited, name, parent].join(' -> ')}`);
  }
  const base = resolveInheritance(plans, parent, [...visited, name], file);
  return { ...base, ...own };
}

/** Names of the configurations in the plans (in file order). */
export function configurationNames(plans: Plans): string[] {
  return Object.keys(plans.configurations);
}

/**
 * Numbers nnU-Net writes as Python floats; everything else integral is an int. Median sizes are
 * np.median floats, except in 3d_lowres where the planner rounds them to ints (`intMedianConfigs`).
 */
export function plansFloatPath(path: JsonPath, intMedianConfigs: ReadonlySet<string> = new Set()): boolean {
  const [top, name, key] = path;
  if (top === 'original_median_spacing_after_transp' || top === 'foreground_intensity_properties_per_channel') return true;
  if (top !== 'configurations') return false;
  if (key === 'spacing') return true;
  if (key === 'median_image_size_in_voxels') return !intMedianConfigs.has(String(name));
  return path[path.length - 1] === 'eps';
}

/** The text nnU-Net's save_json(plans, sort_keys=False) would write for these plans. */
export function formatPlans(plans: Plans): string {
  const ordered: Record<string, unknown> = {};
  for (const key of PLANS_KEY_ORDER) ordered[key] = plans[key];
  for (const [key, value] of Object.entries(plans)) if (!(key in ordered)) ordered[key] = value;
  const lowres = new Set(
    Object.entries(plans.configurations)
      .filter(([, c]) => typeof c.data_identifier === 'string' && c.data_identifier.endsWith('_3d_lowres') && (c.median_image_size_in_voxels ?? []).every(Number.isInteger))
      .map(([name]) => name),
  );
  return toPythonJson(ordered, { isFloat: (path) => plansFloatPath(path, lowres) });
}

/** Reads and validates a plans file. */
export async function loadPlans(path: string): Promise<Plans> {
  return (await loadPlansWithText(path)).plans;
}

/** loadPlans, also returning the file's text as stored (GetModel hands it to clients unchanged). */
export async function loadPlansWithText(path: string): Promise<{ plans: Plans; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DatasetError(`cannot read plans: ${(err as Error).message}`, path);
  }
  let json: unknown;
  try {
    json = parsePythonJson(text);
  } catch (err) {
    throw new DatasetError(`not valid JSON: ${(err as Error).message}`, path);
  }
  return { plans: parsePlans(json, path), text };
}

/** Validates and writes plans atomically, in nnU-Net's layout. */
export async function savePlans(path: string, plans: Plans): Promise<void> {
  parsePlans(plans, path);
  await writeFileAtomic(path, formatPlans(plans));
}
