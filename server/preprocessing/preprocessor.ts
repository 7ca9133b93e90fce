// One case through nnU-Net v2's DefaultPreprocessor.run_case_npy (REFERENCE §4.1): transpose, crop
// to nonzero, normalise (before resampling, as v2 does), resample to the configuration spacing,
// sample class locations. Training and inference both call preprocessCase; inference just passes
// no segmentation (or the previous stage's prediction for the cascade, appended one-hot).
import { cropToNonzero, type BoundingBox, type Shape3 } from '../dataset/crop.js';
import type { LabelManager } from '../dataset/labels.js';
import { getConfiguration, type Configuration, type Plans } from '../planning/plans.js';
import { sampleClassLocations, type ClassLocations, type ClassOrRegion } from './class-locations.js';
import { normalizeChannel, parseNormalizationScheme } from './normalization.js';
import { computeNewShape, resampleDataToShape, resampleOptionsFromKwargs, type ResampleOptions } from './resampling.js';
import { resampleSegToShape } from './segmentation-resampling.js';

/** What the reader knows about a case: spacing and shape in its array order (nnU-Net's). */
export interface CaseInput {
  spacing: readonly number[];
  shape: readonly number[];
  /** Reader metadata (e.g. `nibabel_stuff`) carried into the properties unchanged. */
  [extra: string]: unknown;
}

/** nnU-Net's per-case properties after preprocessing (the `.pkl`, here JSON). */
export interface CaseProperties {
  [extra: string]: unknown;
  /** Raw spacing in the reader's axis order (not transposed), as nnU-Net stores it. */
  spacing: number[];
  shape_before_cropping: number[];
  bbox_used_for_cropping: BoundingBox;
  shape_after_cropping_and_before_resampling: number[];
  /** Only when a training segmentation was given. */
  class_locations?: ClassLocations;
}

export interface PreprocessedCase {
  /** float32 (c, x, y, z), C order, in the transposed axis order. */
  data: Float32Array;
  channels: number;
  /** Spatial shape of data and seg. */
  shape: number[];
  /** int16 (1, x, y, z): −1 outside the nonzero region, 0 background, labels. Absent with `withoutSegmentation`. */
  seg: Int16Array | undefined;
  properties: CaseProperties;
}

export interface PreprocessOptions {
  /**
   * Cascade inference: the previous stage's segmentation in raw geometry. It is cropped and
   * resampled like a segmentation, and its foreground labels are appended to data one-hot.
   */
  previousStageSegmentation?: ArrayLike<number>;
  /** Inference without a cascade needs no segmentation: skip resampling the nonzero mask. */
  withoutSegmentation?: boolean;
}

const product = (s: readonly number[]) => s.reduce((p, n) => p * n, 1);

function checkResamplingFunction(name: string, what: string): void {
  if (name !== 'resample_data_or_seg_to_shape') throw new RangeError(`${what} '${name}' is not supported (only resample_data_or_seg_to_shape is)`);
}

/** Copies a C-order 3D volume into the axis order `perm` (numpy's transpose). */
export function transposeVolume<T extends Float32Array | Int16Array | Uint16Array>(data: T, shape: readonly number[], perm: readonly number[]): T {
  if (perm[0] === 0 && perm[1] === 1 && perm[2] === 2) return data;
  const strides = [shape[1] * shape[2], shape[2], 1];
  const [n0, n1, n2] = perm.map((p) => shape[p]);
  const [s0, s1, s2] = perm.map((p) => strides[p]);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  let i = 0;
  for (let a = 0; a < n0; a++) for (let b = 0; b < n1; b++) for (let c = 0; c < n2; c++) out[i++] = data[a * s0 + b * s1 + c * s2];
  return out;
}

function validateInput(images: readonly Float32Array[], seg: ArrayLike<number> | undefined, input: CaseInput, config: Configuration): void {
  const { shape, spacing } = input;
  if (shape.length !== 3 || !shape.every((n) => Number.isSafeInteger(n) && n >= 1)) {
    throw new RangeError(`case shape must be 3 positive integers (2D images as (1, X, Y)), got [${shape.join(', ')}]`);
  }
  if (spacing.length !== 3 || !spacing.every((s) => Number.isFinite(s) && s > 0)) {
    throw new RangeError(`case spacing must be 3 finite positive numbers, got [${spacing.join(', ')}]`);
  }
  if (images.length === 0) throw new RangeError('a case needs at least one image channel');
  if (images.length !== config.normalization_schemes.length) {
    throw new RangeError(`the case has ${images.length} channel(s), the configuration normalises ${config.normalization_schemes.length}`);
  }
  const n = product(shape);
  images.forEach((im, c) => {
    if (im.length !== n) throw new RangeError(`channel ${c} has ${im.length} voxels, shape [${shape.join(', ')}] needs ${n}`);
    for (let i = 0; i < im.length; i++) {
      if (!Number.isFinite(im[i])) throw new RangeError(`channel ${c} contains a non-finite value (${im[i]}) at voxel ${i}`);
    }
  });
  if (seg !== undefined && seg.length !== n) throw new RangeError(`the segmentation has ${seg.length} voxels, the images ${n}`);
}

/** The classes nnU-Net collects locations for: foreground labels or regions, plus all labels with an ignore label. */
export function classesToSample(labelManager: LabelManager): ClassOrRegion[] {
  const classes: ClassOrRegion[] = labelManager.hasRegions ? labelManager.regions.map((r) => [...r]) : [...labelManager.foregroundLabels];
  if (labelManager.hasIgnoreLabel) classes.push([-1, ...labelManager.allLabels]);
  return classes;
}

/**
 * Preprocesses one case. `images` are the channels (float32, reader order), `seg` the training
 * segmentation or undefined; neither is modified. `configuration` is a name in the plans or an
 * already resolved configuration.
 */
export function preprocessCase(
  images: readonly Float32Array[],
  seg: ArrayLike<number> | undefined,
  input: CaseInput,
  plans: Plans,
  configuration: string | Configuration,
  labelManager: LabelManager,
  options: PreprocessOptions = {},
): PreprocessedCase {
  const config = typeof configuration === 'string' ? getConfiguration(plans, configuration) : configuration;
  const prev = options.previousStageSegmentation;
  if (seg !== undefined && prev !== undefined) throw new RangeError('give either a training segmentation or a previous-stage segmentation, not both');
  validateInput(images, seg ?? prev, input, config);
  checkResamplingFunction(config.resampling_fn_data, 'resampling_fn_data');
  checkResamplingFunction(config.resampling_fn_seg, 'resampling_fn_seg');

  // Transpose (the spacing goes along).
  const perm = plans.transpose_forward;
  const shape = perm.map((p) => input.shape[p]) as Shape3;
  const originalSpacing = perm.map((p) => input.spacing[p]);
  const segSource = seg ?? prev;
  const transposed = images.map((im) => transposeVolume(im, input.shape, perm));
  const transposedSeg = segSource === undefined ? undefined : transposeVolume(toInt16(segSource), input.shape, perm);

  // Crop to the nonzero region; the returned seg is −1 outside it (generated when absent).
  const cropped = cropToNonzero(transposed, transposedSeg, shape);
  const croppedShape = cropped.shapeAfterCropping;

  // 2d configurations keep the spacing between slices.
  const target = config.spacing.length < 3 ? [originalSpacing[0], ...config.spacing] : [...config.spacing];
  const newShape = computeNewShape(croppedShape, originalSpacing, target);

  // Normalise before resampling so that the nonzero mask still fits the image.
  cropped.images.forEach((im, c) =>
    normalizeChannel(im, parseNormalizationScheme(config.normalization_schemes[c]), {
      useMaskForNorm: config.use_mask_for_norm[c] ?? false,
      seg: cropped.seg,
      intensityProperties: plans.foreground_intensity_properties_per_channel[String(c)],
    }),
  );

  const dataOptions = resamplingOptions(config, 'data');
  const segOptions = resamplingOptions(config, 'seg');
  const stacked = stackChannels(cropped.images);
  let data = resampleDataToShape(stacked, cropped.images.length, croppedShape, newShape, originalSpacing, target, dataOptions);
  const skipSeg = options.withoutSegmentation === true && segSource === undefined;
  const outSeg = skipSeg ? undefined : resampleSegToShape(cropped.seg, croppedShape, newShape, originalSpacing, target, segOptions);

  let channels = cropped.images.length;
  if (prev !== undefined && outSeg !== undefined) {
    data = appendOneHot(data, outSeg, labelManager.foregroundLabels);
    channels += labelManager.foregroundLabels.length;
  }

  const { spacing: _spacing, shape: _shape, ...readerMetadata } = input;
  const properties: CaseProperties = {
    ...readerMetadata,
    spacing: [...input.spacing],
    shape_before_cropping: [...shape],
    bbox_used_for_cropping: cropped.bbox,
    shape_after_cropping_and_before_resampling: [...croppedShape],
  };
  if (seg !== undefined && outSeg !== undefined) {
    properties.class_locations = sampleClassLocations(outSeg, newShape, classesToSample(labelManager));
  }
  return { data, channels, shape: newShape, seg: outSeg, properties };
}

function resamplingOptions(config: Configuration, which: 'data' | 'seg'): ResampleOptions {
  const kwargs = which === 'data' ? config.resampling_fn_data_kwargs : config.resampling_fn_seg_kwargs;
  return resampleOptionsFromKwargs(kwargs, { order: which === 'data' ? 3 : 1 });
}

function toInt16(seg: ArrayLike<number>): Int16Array {
  if (seg instanceof Int16Array) return seg;
  const out = new Int16Array(seg.length);
  for (let i = 0; i < seg.length; i++) {
    const v = seg[i];
    if (!(Number.isInteger(v) && v >= -32768 && v <= 32767)) throw new RangeError(`segmentation value ${v} at voxel ${i} is not an int16 label`);
    out[i] = v;
  }
  return out;
}

function stackChannels(channels: readonly Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0];
  const n = channels[0].length;
  const out = new Float32Array(channels.length * n);
  channels.forEach((c, i) => out.set(c, i * n));
  return out;
}

/** Appends one float channel per foreground label (1 where seg equals it); −1 and 0 give all zeros. */
function appendOneHot(data: Float32Array, seg: Int16Array, labels: readonly number[]): Float32Array {
  const n = seg.length;
  const out = new Float32Array(data.length + labels.length * n);
  out.set(data);
  labels.forEach((label, k) => {
    const off = data.length + k * n;
    for (let i = 0; i < n; i++) if (seg[i] === label) out[off + i] = 1;
  });
  return out;
}
