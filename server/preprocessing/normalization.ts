// Intensity normalisation schemes of nnU-Net v2 (default_normalization_schemes.py) and the channel
// name → scheme mapping (map_channel_name_to_normalization.py). Per-voxel arithmetic is float32 as
// numpy does it on float32 images with float32/Python-float scalars; means and variances are summed
// in float64 (numpy sums pairwise in float32), so statistics can differ from nnU-Net's in the last ulp.
import type { IntensityProperties } from '../planning/plans.js';

export const NORMALIZATION_SCHEMES = [
  'CTNormalization',
  'NoNormalization',
  'ZScoreNormalization',
  'RescaleTo01Normalization',
  'RGBTo01Normalization',
] as const;

export type NormalizationScheme = (typeof NORMALIZATION_SCHEMES)[number];

/** Channel names (compared case-insensitively) with their own scheme; anything else is z-scored. */
const CHANNEL_NAME_TO_SCHEME: Record<string, NormalizationScheme> = {
  ct: 'CTNormalization',
  nonorm: 'NoNormalization',
  zscore: 'ZScoreNormalization',
  rescale_to_0_1: 'RescaleTo01Normalization',
  rgb_to_0_1: 'RGBTo01Normalization',
};

/** nnU-Net's get_normalization_scheme: 'CT', 'noNorm', 'zscore', 'rescale_to_0_1', 'rgb_to_0_1', default z-score. */
export function normalizationSchemeForChannel(channelName: string): NormalizationScheme {
  // Python's casefold() equals toLowerCase() for the ASCII names that matter here.
  return CHANNEL_NAME_TO_SCHEME[channelName.toLowerCase()] ?? 'ZScoreNormalization';
}

/** Schemes that may normalise inside the nonzero mask only (`leaves_pixels_outside_mask_at_zero...`). */
export function supportsMaskForNorm(scheme: NormalizationScheme): boolean {
  return scheme === 'ZScoreNormalization';
}

export function parseNormalizationScheme(name: string): NormalizationScheme {
  const scheme = NORMALIZATION_SCHEMES.find((s) => s === name);
  if (!scheme) throw new RangeError(`unknown normalization scheme '${name}' (known: ${NORMALIZATION_SCHEMES.join(', ')})`);
  return scheme;
}

export interface NormalizeOptions {
  /** Only z-score honours it: statistics and normalisation inside `seg >= 0`. */
  useMaskForNorm?: boolean;
  /** The case's cropped segmentation (−1 outside the nonzero mask); the mask source for useMaskForNorm. */
  seg?: ArrayLike<number>;
  /** Dataset foreground statistics of this channel; required by CTNormalization. */
  intensityProperties?: IntensityProperties;
}

const f32 = Math.fround;
/** nnU-Net's epsilon for float32 targets. */
const EPS = 1e-8;

/** numpy's `max(std, 1e-8)` used as a float32 divisor. */
const divisor = (std: number) => (std > EPS ? std : f32(EPS));

/**
 * Normalises one channel in place (nnU-Net's normalizer.run(image, seg)) and returns it. The
 * image must be a float32 array; it is modified.
 */
export function normalizeChannel(image: Float32Array, scheme: NormalizationScheme, options: NormalizeOptions = {}): Float32Array {
  switch (scheme) {
    case 'ZScoreNormalization':
      return options.useMaskForNorm && options.seg !== undefined ? zScoreMasked(image, options.seg) : zScore(image);
    case 'CTNormalization':
      return ct(image, options.intensityProperties);
    case 'NoNormalization':
      return image;
    case 'RescaleTo01Normalization':
      return rescaleTo01(image);
    case 'RGBTo01Normalization':
      return rgbTo01(image);
  }
}

/** float32 mean and population std of the selected voxels, as numpy returns them. */
function meanStd(image: Float32Array, mask?: ArrayLike<number>): { mean: number; std: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < image.length; i++) {
    if (mask !== undefined && !(mask[i] >= 0)) continue;
    sum += image[i];
    count++;
  }
  if (count === 0) return { mean: 0, std: 0, count };
  const mean = f32(sum / count);
  let ss = 0;
  for (let i = 0; i < image.length; i++) {
    if (mask !== undefined && !(mask[i] >= 0)) continue;
    const d = f32(image[i] - mean);
    ss += d * d;
  }
  return { mean, std: f32(Math.sqrt(ss / count)), count };
}

function zScore(image: Float32Array): Float32Array {
  const { mean, std } = meanStd(image);
  const d = divisor(std);
  for (let i = 0; i < image.length; i++) image[i] = f32(image[i] - mean) / d;
  return image;
}

/** Inside `seg >= 0` only; voxels outside keep their value (0 by construction of the crop). */
function zScoreMasked(image: Float32Array, seg: ArrayLike<number>): Float32Array {
  if (seg.length !== image.length) throw new RangeError(`mask has ${seg.length} voxels, the image ${image.length}`);
  const { mean, std, count } = meanStd(image, seg);
  if (count === 0) return image;
  const d = divisor(std);
  for (let i = 0; i < image.length; i++) if (seg[i] >= 0) image[i] = f32(image[i] - mean) / d;
  return image;
}

function ct(image: Float32Array, p: IntensityProperties | undefined): Float32Array {
  if (p === undefined) throw new RangeError('CTNormalization needs the foreground intensity properties of the channel (from the plans)');
  for (const key of ['mean', 'std', 'percentile_00_5', 'percentile_99_5'] as const) {
    if (!Number.isFinite(p[key])) throw new RangeError(`CTNormalization: intensity property ${key} is ${p[key]}`);
  }
  // Python-float scalars act on a float32 array as float32 values.
  const lo = f32(p.percentile_00_5);
  const hi = f32(p.percentile_99_5);
  const mean = f32(p.mean);
  const d = f32(Math.max(p.std, EPS));
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    const c = v < lo ? lo : v > hi ? hi : v;
    image[i] = f32(c - mean) / d;
  }
  return image;
}

function rescaleTo01(image: Float32Array): Float32Array {
  let min = Infinity;
  for (let i = 0; i < image.length; i++) if (image[i] < min) min = image[i];
  let max = -Infinity;
  for (let i = 0; i < image.length; i++) {
    image[i] = image[i] - min;
    if (image[i] > max) max = image[i];
  }
  const d = divisor(max);
  for (let i = 0; i < image.length; i++) image[i] = image[i] / d;
  return image;
}

function rgbTo01(image: Float32Array): Float32Array {
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    if (!(v >= 0 && v <= 255)) {
      throw new RangeError(`RGBTo01Normalization expects values in [0, 255] (uint8 RGB), found ${v}: use another channel name for this image`);
    }
  }
  for (let i = 0; i < image.length; i++) image[i] = image[i] / 255;
  return image;
}
