// nnU-Net's configure_rotation_dummyDA_mirroring_and_inital_patch_size (REFERENCE §5.2–5.3): the
// rotation range, dummy-2D augmentation for anisotropic 3D patches, mirror axes (also the
// test-time mirroring axes saved in the checkpoint) and the enlarged initial patch (get_patch_size).
import type { MirroringMode } from './trainer-options.js';

/** Patches whose largest axis exceeds axis 0 by this factor get in-plane (dummy 2D) augmentation. */
export const ANISO_THRESHOLD = 3;
const deg = (d: number) => (d / 360) * 2 * Math.PI;

export interface AugmentationGeometry {
  dummy2d: boolean;
  /** Radians, the same range for every rotation axis. */
  rotationRange: [number, number];
  /** Axes flipped by augmentation; empty = none. */
  mirrorAxes: number[];
  /** Saved in checkpoints, used for test-time mirroring (equal to mirrorAxes, as in nnU-Net). */
  inferenceAllowedMirroringAxes: number[];
  /** The larger patch the training loader cuts before spatial augmentation. */
  initialPatchSize: number[];
}

type Vec = number[];

/** batchgenerators' rotate_coords_3d with one angle: the row vector times the rotation matrix. */
function rotate3d(c: Vec, axis: 0 | 1 | 2, a: number): Vec {
  const [x, y, z] = c;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  if (axis === 0) return [x, y * cos + z * sin, -y * sin + z * cos];
  if (axis === 1) return [x * cos - z * sin, y, x * sin + z * cos];
  return [x * cos + y * sin, -x * sin + y * cos, z];
}

function rotate2d(c: Vec, a: number): Vec {
  const [x, y] = c;
  return [x * Math.cos(a) + y * Math.sin(a), -x * Math.sin(a) + y * Math.cos(a)];
}

/**
 * get_patch_size: the patch rotated by the largest angle (capped at 90°) about each axis in turn,
 * the per-axis maximum extent (the unrotated patch included), divided by the smallest scale and
 * truncated. nnU-Net passes the scale range (0.85, 1.25) here, not the (0.7, 1.4) it augments with.
 */
export function initialPatchSize(patch: number[], rotation: [number, number], scaleRange: [number, number] = [0.85, 1.25]): number[] {
  const angle = Math.min(deg(90), Math.max(Math.abs(rotation[0]), Math.abs(rotation[1])));
  let extent = [...patch];
  const grow = (v: Vec) => (extent = extent.map((e, i) => Math.max(e, Math.abs(v[i]))));
  if (patch.length === 3) {
    grow(rotate3d(patch, 0, angle));
    grow(rotate3d(patch, 1, angle));
    grow(rotate3d(patch, 2, angle));
  } else if (patch.length === 2) {
    grow(rotate2d(patch, angle));
  } else {
    throw new RangeError(`patch size must have 2 or 3 axes, got [${patch.join(', ')}]`);
  }
  const minScale = Math.min(...scaleRange);
  return extent.map((e) => Math.trunc(e / minScale));
}

/** The rotation/mirroring set-up for a configuration's patch size. */
export function augmentationGeometry(patchSize: number[], mirroring: MirroringMode = 'default'): AugmentationGeometry {
  const dim = patchSize.length;
  let dummy2d = false;
  let rotationRange: [number, number];
  let mirrorAxes: number[];
  if (dim === 2) {
    rotationRange = Math.max(...patchSize) / Math.min(...patchSize) > 1.5 ? [-deg(15), deg(15)] : [-deg(180), deg(180)];
    mirrorAxes = [0, 1];
  } else if (dim === 3) {
    dummy2d = Math.max(...patchSize) / patchSize[0] > ANISO_THRESHOLD;
    rotationRange = dummy2d ? [-deg(180), deg(180)] : [-deg(30), deg(30)];
    mirrorAxes = [0, 1, 2];
  } else {
    throw new RangeError(`patch size must have 2 or 3 axes, got [${patchSize.join(', ')}]`);
  }
  // Dummy 2D rotates in-plane only: the enlarged patch is computed on the in-plane axes and the
  // first axis keeps its size.
  const initial = dummy2d ? [patchSize[0], ...initialPatchSize(patchSize.slice(1), rotationRange)] : initialPatchSize(patchSize, rotationRange);
  if (mirroring === 'none') mirrorAxes = [];
  else if (mirroring === 'only01') mirrorAxes = dim === 2 ? [0] : [0, 1];
  return { dummy2d, rotationRange, mirrorAxes, inferenceAllowedMirroringAxes: [...mirrorAxes], initialPatchSize: initial };
}
