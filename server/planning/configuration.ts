// One configuration of the plans (nnU-Net v2 ExperimentPlanner.get_plans_for_configuration,
// REFERENCE §3.4): initial patch of 256^3 (3D) / 2048^2 (2D) voxels shaped by the spacing, clipped to
// the median image, topology, then shrink the patch until the feature-map estimate fits the GPU
// memory target, and a batch size from the remaining headroom, capped by the dataset coverage.
import { DatasetError } from '../dataset/errors.js';
import type { NormalizationPlan } from './normalization.js';
import { product, roundHalfEven } from './numeric.js';
import type { Architecture, Configuration, ResamplingKwargs } from './plans.js';
import type { PlannerPreset } from './presets.js';
import { getPoolAndConvProps, type Topology } from './topology.js';
import { convFeatureMapSize } from './vram.js';

export const FEATURE_MAP_MIN_EDGE = 4;
const BASE_FEATURES = 32;
const MAX_FEATURES_3D = 320;
const MAX_FEATURES_2D = 512;
const MIN_BATCH_SIZE = 2;
const MAX_NUM_POOL = 999999;

export interface PlanningContext {
  preset: PlannerPreset;
  gpuMemoryTargetGB: number;
  /** len(dataset.json labels): every key, background and ignore included, as nnU-Net counts. */
  numClasses: number;
  normalization: NormalizationPlan;
  preprocessorName: string;
  /** Feature-map estimates by patch and strides, shared by all configurations of one plan. */
  estimateCache: Map<string, number>;
}

/** resample_data_or_seg_to_shape settings of every default configuration (REFERENCE §4.3). */
const resampling = (isSeg: boolean, order: number): ResamplingKwargs => ({ is_seg: isSeg, order, order_z: 0, force_separate_z: null });

function featuresPerStage(numStages: number, maxFeatures: number): number[] {
  return Array.from({ length: numStages }, (_, i) => Math.min(maxFeatures, BASE_FEATURES * 2 ** i));
}

function architecture(ctx: PlanningContext, topology: Topology, dim: number): Architecture {
  const { preset } = ctx;
  const n = topology.strides.length;
  return {
    network_class_name: preset.networkClassName,
    arch_kwargs: {
      n_stages: n,
      features_per_stage: featuresPerStage(n, dim === 2 ? MAX_FEATURES_2D : MAX_FEATURES_3D),
      conv_op: `torch.nn.modules.conv.Conv${dim}d`,
      kernel_sizes: topology.kernelSizes,
      strides: topology.strides,
      [preset.encoderDepthKey]: preset.encoderDepth.slice(0, n),
      n_conv_per_stage_decoder: preset.decoderConvs.slice(0, n - 1),
      conv_bias: true,
      norm_op: `torch.nn.modules.instancenorm.InstanceNorm${dim}d`,
      norm_op_kwargs: { eps: 1e-5, affine: true },
      dropout_op: null,
      dropout_op_kwargs: null,
      nonlin: 'torch.nn.LeakyReLU',
      nonlin_kwargs: { inplace: true },
    } as Architecture['arch_kwargs'],
    _kw_requires_import: ['conv_op', 'norm_op', 'dropout_op', 'nonlin'],
  };
}

function estimate(ctx: PlanningContext, arch: Architecture, patch: readonly number[]): number {
  const kw = arch.arch_kwargs;
  const key = `${JSON.stringify(patch)}_${JSON.stringify(kw.strides)}`;
  let value = ctx.estimateCache.get(key);
  if (value === undefined) {
    value = convFeatureMapSize(
      {
        kind: ctx.preset.network,
        featuresPerStage: kw.features_per_stage,
        strides: kw.strides,
        encoderDepth: kw[ctx.preset.encoderDepthKey] as number[],
        decoderConvs: kw.n_conv_per_stage_decoder,
        numClasses: ctx.numClasses,
      },
      patch,
    );
    ctx.estimateCache.set(key, value);
  }
  return value;
}

/** The patch before topology: `base` voxels per axis on average, aspect ratio from the spacing. */
export function initialPatchSize(spacing: readonly number[], medianShape: readonly number[]): number[] {
  const inv = spacing.map((s) => 1 / s);
  const dim = spacing.length;
  const scale = dim === 3 ? (256 ** 3 / product(inv)) ** (1 / 3) : (2048 ** 2 / product(inv)) ** (1 / 2);
  return inv.map((u, i) => Math.min(roundHalfEven(u * scale), medianShape[i]));
}

/**
 * Plans one configuration at `spacing` for images of `medianShape` voxels (both transposed).
 * `batch_dice` is left false: it depends on the other configurations and the planner sets it.
 */
export function planConfiguration(
  ctx: PlanningContext,
  spacing: readonly number[],
  medianShape: readonly number[],
  dataIdentifier: string,
  approxVoxelsDataset: number,
): Configuration {
  const dim = spacing.length;
  if (!spacing.every((s) => Number.isFinite(s) && s > 0)) throw new DatasetError(`target spacing must be positive, got [${spacing.join(', ')}]`);
  if (!medianShape.every((s) => s >= 1)) {
    throw new DatasetError(`the median image would be [${medianShape.join(', ')}] voxels at spacing [${spacing.join(', ')}]; the target spacing is coarser than the images`);
  }
  const { preset } = ctx;
  let topology = getPoolAndConvProps(spacing, initialPatchSize(spacing, medianShape), FEATURE_MAP_MIN_EDGE, MAX_NUM_POOL);
  let patch = topology.patchSize;
  let arch = architecture(ctx, topology, dim);
  let est = estimate(ctx, arch, patch);

  const reference = (dim === 2 ? preset.referenceVal2d : preset.referenceVal3d) * (ctx.gpuMemoryTargetGB / preset.referenceGB);
  const refBatch = dim === 2 ? preset.referenceBatchSize2d : preset.referenceBatchSize3d;
  const tooLarge = (e: number) => (preset.shrinkRule === 'per-sample' ? (e / refBatch) * 2 > reference : e > reference);
  while (tooLarge(est)) {
    // Shrink the axis that is largest relative to the median image (the last one among ties, as
    // numpy's stable argsort for short arrays gives).
    const ratios = patch.map((p, i) => p / medianShape[i]);
    let axis = 0;
    for (let i = 1; i < dim; i++) if (ratios[i] >= ratios[axis]) axis = i;
    // Step by the divisibility of the smaller patch, so that e.g. 224 is not skipped between 256 and 192.
    const tmp = [...patch];
    tmp[axis] -= topology.mustBeDivisibleBy[axis];
    const step = getPoolAndConvProps(spacing, tmp, FEATURE_MAP_MIN_EDGE, MAX_NUM_POOL).mustBeDivisibleBy[axis];
    const next = [...patch];
    next[axis] -= step;
    if (next[axis] < 1) {
      throw new DatasetError(`no patch size fits a GPU memory target of ${ctx.gpuMemoryTargetGB} GB for spacing [${spacing.join(', ')}]; raise -gpu_memory_target`);
    }
    topology = getPoolAndConvProps(spacing, next, FEATURE_MAP_MIN_EDGE, MAX_NUM_POOL);
    patch = topology.patchSize;
    arch = architecture(ctx, topology, dim);
    est = estimate(ctx, arch, patch);
  }

  const batchByMemory = roundHalfEven((reference / est) * refBatch);
  const batchByCoverage = roundHalfEven((approxVoxelsDataset * preset.maxDatasetCovered) / product(patch));
  const batchSize = Math.max(Math.min(batchByMemory, batchByCoverage), MIN_BATCH_SIZE);

  return {
    data_identifier: dataIdentifier,
    preprocessor_name: ctx.preprocessorName,
    batch_size: batchSize,
    patch_size: patch,
    median_image_size_in_voxels: [...medianShape],
    spacing: [...spacing],
    normalization_schemes: [...ctx.normalization.schemes],
    use_mask_for_norm: [...ctx.normalization.useMaskForNorm],
    resampling_fn_data: 'resample_data_or_seg_to_shape',
    resampling_fn_seg: 'resample_data_or_seg_to_shape',
    resampling_fn_data_kwargs: resampling(false, 3),
    resampling_fn_seg_kwargs: resampling(true, 1),
    resampling_fn_probabilities: 'resample_data_or_seg_to_shape',
    resampling_fn_probabilities_kwargs: resampling(false, 1),
    architecture: arch,
    batch_dice: false,
  };
}
