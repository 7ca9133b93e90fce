// From network-grid logits back to the raw image (REFERENCE §7.6): resample the logits to the
// cropped raw grid (float16 result, as nnU-Net's resampler returns the input dtype), softmax or
// sigmoid in float32, segmentation by argmax / region thresholds, un-crop into the full array
// (background 1 outside the crop for probabilities), transpose back to the reader's axis order.
import type { LabelManager } from '../dataset/labels.js';
import { roundToHalfInPlace } from '../io/npy.js';
import type { Configuration, Plans } from '../planning/plans.js';
import type { CaseProperties } from '../preprocessing/preprocessor.js';
import { transposeVolume } from '../preprocessing/preprocessor.js';
import { resampleLogitsToShape } from '../preprocessing/resampling.js';
import type { Logits } from './predict-logits.js';
import type { Shape3 } from './volume-ops.js';

export interface ExportedPrediction {
  /** Label map in the reader's axis order, shape `properties.shape_before_cropping`. */
  segmentation: Uint16Array;
  /** (K, ...shape) float32 in the reader's axis order, when requested. */
  probabilities?: Float32Array;
  shape: Shape3;
}

/** Softmax over channels (labels) or sigmoid per channel (regions), computed in float32 as torch does. */
export function applyInferenceNonlinearity(logits: Float32Array, channels: number, voxels: number, labels: LabelManager): Float32Array {
  const out = new Float32Array(logits.length);
  if (labels.inferenceNonlinearity === 'sigmoid') {
    for (let i = 0; i < logits.length; i++) out[i] = Math.fround(1 / (1 + Math.exp(-logits[i])));
    return out;
  }
  for (let v = 0; v < voxels; v++) {
    let max = -Infinity;
    for (let c = 0; c < channels; c++) max = Math.max(max, logits[c * voxels + v]);
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const e = Math.exp(logits[c * voxels + v] - max);
      out[c * voxels + v] = e;
      sum += e;
    }
    for (let c = 0; c < channels; c++) out[c * voxels + v] = Math.fround(out[c * voxels + v] / sum);
  }
  return out;
}

/** Argmax (labels; first maximum wins) straight from logits, the same decision as argmax of softmax. */
function logitsToSegmentation(values: Float32Array, channels: number, voxels: number, labels: LabelManager, probabilities: boolean): Uint16Array {
  if (labels.hasRegions) {
    const p = probabilities ? values : applyInferenceNonlinearity(values, channels, voxels, labels);
    return labels.probabilitiesToSegmentation(p, voxels);
  }
  return labels.probabilitiesToSegmentation(values, voxels);
}

export function exportPrediction(
  logits: Logits,
  properties: CaseProperties,
  plans: Plans,
  configuration: Configuration,
  labels: LabelManager,
  { saveProbabilities = false }: { saveProbabilities?: boolean } = {},
): ExportedPrediction {
  const perm = plans.transpose_forward;
  const rawSpacingT = perm.map((p) => properties.spacing[p]);
  const is2d = configuration.patch_size.length === 2;
  const currentSpacing = is2d ? [rawSpacingT[0], ...configuration.spacing] : configuration.spacing;
  const croppedShape = properties.shape_after_cropping_and_before_resampling as Shape3;
  const K = logits.channels;
  let resampled = logits.data;
  if (logits.shape.some((s, d) => s !== croppedShape[d])) {
    resampled = roundToHalfInPlace(
      resampleLogitsToShape(logits.data, K, logits.shape, croppedShape, currentSpacing, rawSpacingT, configuration.resampling_fn_probabilities_kwargs),
    );
  }
  const croppedVoxels = croppedShape[0] * croppedShape[1] * croppedShape[2];
  const probs = saveProbabilities ? applyInferenceNonlinearity(resampled, K, croppedVoxels, labels) : undefined;
  const segCropped = logitsToSegmentation(probs ?? resampled, K, croppedVoxels, labels, probs !== undefined);

  // Un-crop into the transposed full-size grid, then transpose back to the reader's order.
  const fullT = perm.map((p) => properties.shape_before_cropping[p]) as Shape3;
  const bbox = properties.bbox_used_for_cropping;
  const fullVoxels = fullT[0] * fullT[1] * fullT[2];
  const place = (src: Float32Array | Uint16Array, dst: Float32Array | Uint16Array, srcOff: number, dstOff: number) => {
    for (let x = 0; x < croppedShape[0]; x++) {
      for (let y = 0; y < croppedShape[1]; y++) {
        const s = srcOff + (x * croppedShape[1] + y) * croppedShape[2];
        const d = dstOff + ((x + bbox[0][0]) * fullT[1] + (y + bbox[1][0])) * fullT[2] + bbox[2][0];
        dst.set(src.subarray(s, s + croppedShape[2]), d);
      }
    }
  };
  const segT = new Uint16Array(fullVoxels);
  place(segCropped, segT, 0, 0);
  const backward = plans.transpose_backward;
  const shape = backward.map((p) => fullT[p]) as Shape3;
  const segmentation = transposeVolume(segT, fullT, backward);
  if (!probs) return { segmentation, shape };

  const probabilities = new Float32Array(K * fullVoxels);
  for (let c = 0; c < K; c++) {
    const channel = new Float32Array(fullVoxels);
    if (c === 0 && !labels.hasRegions) channel.fill(1); // background outside the crop
    place(probs, channel, c * croppedVoxels, 0);
    probabilities.set(transposeVolume(channel, fullT, backward), c * fullVoxels);
  }
  return { segmentation, probabilities, shape };
}
