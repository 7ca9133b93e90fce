// One training case of the dataset fingerprint (nnU-Net v2's DatasetFingerprintExtractor.analyze_case):
// read, crop to nonzero, and draw foreground intensities with a fresh RandomState(1234) — the same
// voxels nnU-Net draws. The draws are kept as a histogram (distinct value → count), not as the
// millions of samples nnU-Net keeps, so the dataset statistics cost little memory.
import { cropToNonzero, type Shape3 } from '../dataset/crop.js';
import { DatasetError } from '../dataset/errors.js';
import { readNifti, toFloat32, type NiftiImage } from '../io/nifti.js';
import { RandomState } from '../util/mt19937.js';

/** Sampled foreground intensities of one channel: ascending distinct values and how often each was drawn. */
export interface IntensityHistogram {
  values: Float32Array;
  counts: Float64Array;
}

export interface CaseFingerprint {
  shapeAfterCrop: Shape3;
  spacing: [number, number, number];
  relativeSizeAfterCropping: number;
  /** One per channel; empty histograms when the case has no foreground. */
  intensities: IntensityHistogram[];
}

/** The seed nnU-Net re-creates for every case (REFERENCE Appendix B.12). */
const SEED = 1234;

/** Ascending distinct values of `values`. */
function distinctSorted(values: Float32Array): Float32Array {
  const sorted = Float32Array.from(values).sort();
  let n = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[n - 1]) sorted[n++] = sorted[i];
  return sorted.slice(0, n);
}

/** Index of `v` in the ascending array `sorted` (which contains it). */
function indexOf(sorted: Float32Array, v: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Histogram of `choice(values, size, replace=True)` drawn from `rs`. */
export function sampleHistogram(values: Float32Array, size: number, rs: RandomState): IntensityHistogram {
  if (values.length === 0 || size === 0) return { values: new Float32Array(0), counts: new Float64Array(0) };
  const perVoxel = rs.randintCounts(values.length, size);
  const distinct = distinctSorted(values);
  const counts = new Float64Array(distinct.length);
  for (let i = 0; i < values.length; i++) if (perVoxel[i] > 0) counts[indexOf(distinct, values[i])] += perVoxel[i];
  // Values never drawn are dropped so that min/max reflect the samples, as in nnU-Net.
  let n = 0;
  for (let i = 0; i < distinct.length; i++) {
    if (counts[i] === 0) continue;
    distinct[n] = distinct[i];
    counts[n++] = counts[i];
  }
  return { values: distinct.slice(0, n), counts: counts.slice(0, n) };
}

function hasNaN(data: Float32Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== data[i]) return true;
  return false;
}

/**
 * Spacing as nnU-Net's 2D readers report it: a single-slice image gets a pseudo slice spacing of
 * 999 × the largest in-plane spacing, so the slice axis is never resampled or pooled.
 */
export function effectiveSpacing(shape: Shape3, spacing: readonly number[]): [number, number, number] {
  const s = [...spacing] as [number, number, number];
  const pseudo = 999 * Math.max(s[1], s[2]);
  // `>` so that a missing (0 or NaN) slice spacing is replaced too.
  if (shape[0] === 1 && !(s[0] > pseudo)) s[0] = pseudo;
  return s;
}

function checkSpacing(spacing: readonly number[], file: string): void {
  if (!spacing.every((x) => Number.isFinite(x) && x > 0)) {
    throw new DatasetError(`spacing must be positive and finite on every axis, got [${spacing.join(', ')}]; fix the header's pixdim`, file);
  }
}

async function readCase(imageFiles: readonly string[], labelFile: string): Promise<{ channels: Float32Array[]; seg: NiftiImage; ref: NiftiImage }> {
  const channels: Float32Array[] = [];
  let ref: NiftiImage | undefined;
  for (const file of imageFiles) {
    const img = await readNifti(file);
    if (ref && img.shape.join() !== ref.shape.join()) {
      throw new DatasetError(`shape [${img.shape.join(', ')}] differs from the first channel's [${ref.shape.join(', ')}]`, file);
    }
    ref ??= img;
    const data = toFloat32(img.data);
    if (hasNaN(data)) throw new DatasetError('image contains NaN values', file);
    const n = data.length / img.channels;
    for (let c = 0; c < img.channels; c++) channels.push(data.subarray(c * n, (c + 1) * n));
  }
  if (!ref) throw new DatasetError('case has no image files', labelFile);
  const seg = await readNifti(labelFile);
  if (seg.shape.join() !== ref.shape.join()) {
    throw new DatasetError(`segmentation shape [${seg.shape.join(', ')}] does not match image shape [${ref.shape.join(', ')}]`, labelFile);
  }
  if (seg.channels !== 1) throw new DatasetError(`segmentation must have one channel, has ${seg.channels}`, labelFile);
  return { channels, seg, ref };
}

/** Fingerprint of one case: crop, shape, spacing and `samplesPerChannel` foreground draws per channel. */
export async function analyzeCase(imageFiles: readonly string[], labelFile: string, samplesPerChannel: number): Promise<CaseFingerprint> {
  const { channels, seg, ref } = await readCase(imageFiles, labelFile);
  const shape = ref.shape;
  const spacing = effectiveSpacing(shape, ref.spacing);
  checkSpacing(spacing, imageFiles[0]);
  const cropped = cropToNonzero(channels, seg.data, shape);
  const fg = cropped.seg;
  let numFg = 0;
  for (let i = 0; i < fg.length; i++) if (fg[i] > 0) numFg++;
  const rs = new RandomState(SEED);
  const intensities = cropped.images.map((img) => {
    const values = new Float32Array(numFg);
    let k = 0;
    for (let i = 0; i < fg.length; i++) if (fg[i] > 0) values[k++] = img[i];
    return sampleHistogram(values, samplesPerChannel, rs);
  });
  const after = cropped.shapeAfterCropping;
  const voxels = (s: readonly number[]) => s[0] * s[1] * s[2];
  return {
    shapeAfterCrop: after,
    spacing,
    relativeSizeAfterCropping: voxels(after) / voxels(shape),
    intensities,
  };
}
