// Target spacing, transpose and resampled shapes (nnU-Net v2 ExperimentPlanner's
// determine_fullres_target_spacing, determine_transpose and compute_new_shape; REFERENCE §3.2-3.4):
// the median spacing, except that a much coarser axis with few voxels takes its 10th percentile.
import { percentile, percentilePerAxis, roundHalfEven } from './numeric.js';

/** nnU-Net's ANISO_THRESHOLD (nnunetv2/configuration.py). */
export const ANISO_THRESHOLD = 3;

/** Index of the first maximum, as np.argmax. */
export function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** Target spacing of 3d_fullres in the reader's axis order. */
export function fullresTargetSpacing(spacings: readonly (readonly number[])[], shapesAfterCrop: readonly (readonly number[])[]): number[] {
  const target = percentilePerAxis(spacings, 50);
  const targetSize = percentilePerAxis(shapesAfterCrop, 50);
  const worst = argmax(target);
  const others = target.map((_, i) => i).filter((i) => i !== worst);
  const otherSpacings = others.map((i) => target[i]);
  const otherSizes = others.map((i) => targetSize[i]);
  const anisoSpacing = target[worst] > ANISO_THRESHOLD * Math.max(...otherSpacings);
  const anisoVoxels = targetSize[worst] * ANISO_THRESHOLD < Math.min(...otherSizes);
  if (anisoSpacing && anisoVoxels) {
    let t = percentile(spacings.map((s) => s[worst]), 10);
    // Never coarser-than-median made finer than the other axes.
    if (t < Math.max(...otherSpacings)) t = Math.max(Math.max(...otherSpacings), t) + 1e-5;
    target[worst] = t;
  }
  return target;
}

/** The coarsest axis first, the others in order; backward is the inverse permutation. */
export function determineTranspose(targetSpacing: readonly number[]): { forward: number[]; backward: number[] } {
  const first = argmax(targetSpacing);
  const forward = [first, ...[0, 1, 2].filter((i) => i !== first)];
  const backward = [0, 1, 2].map((i) => forward.indexOf(i));
  return { forward, backward };
}

/** `int(round(old_spacing / new_spacing * old_shape))` per axis, with Python's half-even round. */
export function computeNewShape(oldShape: readonly number[], oldSpacing: readonly number[], newSpacing: readonly number[]): number[] {
  return oldShape.map((s, i) => roundHalfEven((oldSpacing[i] / newSpacing[i]) * s));
}

export const transpose = <T>(xs: readonly T[], order: readonly number[]): T[] => order.map((i) => xs[i]);
