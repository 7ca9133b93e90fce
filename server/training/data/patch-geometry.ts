// Patch geometry of nnU-Net v2's training data loading (REFERENCE §5.2, §5.4): the enlarged initial
// patch (get_patch_size), need_to_pad and the per-sample bounding box (random, forced foreground,
// ignore-label rule), which samples of a batch are forced, and the deep-supervision scales. Pure
// integer arithmetic with Python's semantics (floor division, half-even round, int() truncation).
import { roundHalfEven } from '../../planning/numeric.js';
import { classKey } from '../../preprocessing/class-locations.js';
import type { DecisionRng } from './rng.js';

/** Coordinates `(channel, x, y, z)` per class key, as preprocessing stores them (§4.4). */
export type ClassLocations = Record<string, readonly (readonly number[])[]>;

const floorDiv = (a: number, b: number): number => Math.floor(a / b);

/** Row vector × matrix, as batchgenerators' rotate_coords_* (np.dot(coords, R)). */
function rowTimes(v: readonly number[], m: readonly (readonly number[])[]): number[] {
  return m[0].map((_, j) => v.reduce((s, vi, i) => s + vi * m[i][j], 0));
}

function rotationX(a: number): number[][] {
  const [c, s] = [Math.cos(a), Math.sin(a)];
  return [[1, 0, 0], [0, c, -s], [0, s, c]];
}
function rotationY(a: number): number[][] {
  const [c, s] = [Math.cos(a), Math.sin(a)];
  return [[c, 0, s], [0, 1, 0], [-s, 0, c]];
}
function rotationZ(a: number): number[][] {
  const [c, s] = [Math.cos(a), Math.sin(a)];
  return [[c, -s, 0], [s, c, 0], [0, 0, 1]];
}
function rotation2d(a: number): number[][] {
  const [c, s] = [Math.cos(a), Math.sin(a)];
  return [[c, -s], [s, c]];
}

type AngleRange = number | readonly [number, number];
const maxAngle = (r: AngleRange): number => Math.min(Math.PI / 2, typeof r === 'number' ? Math.abs(r) : Math.max(Math.abs(r[0]), Math.abs(r[1])));

/**
 * nnU-Net's get_patch_size: rotate the patch's extent vector by the largest angle of each axis'
 * range (capped at 90°), keep the per-axis maximum of |coordinates| (the unrotated extent
 * included), divide by the smallest scale and truncate. The vector, not the box corners, is
 * rotated — that is what nnU-Net does, and the sizes below depend on it.
 */
export function getPatchSize(
  finalPatchSize: readonly number[],
  rotX: AngleRange,
  rotY: AngleRange,
  rotZ: AngleRange,
  scaleRange: readonly [number, number],
): number[] {
  const coords = [...finalPatchSize];
  let out = coords.map(Math.abs);
  const keepMax = (v: number[]) => (out = out.map((o, i) => Math.max(o, Math.abs(v[i]))));
  if (coords.length === 3) {
    keepMax(rowTimes(coords, rotationX(maxAngle(rotX))));
    keepMax(rowTimes(coords, rotationY(maxAngle(rotY))));
    keepMax(rowTimes(coords, rotationZ(maxAngle(rotZ))));
  } else if (coords.length === 2) {
    keepMax(rowTimes(coords, rotation2d(maxAngle(rotX))));
  } else {
    throw new RangeError(`get_patch_size: patch must have 2 or 3 axes, got [${finalPatchSize.join(', ')}]`);
  }
  const minScale = Math.min(...scaleRange);
  return out.map((v) => Math.trunc(v / minScale));
}

/** The scale range get_patch_size is given (nnU-Net's, not the (0.7, 1.4) of the scaling itself). */
export const INITIAL_PATCH_SCALE_RANGE: [number, number] = [0.85, 1.25];

/**
 * The initial (loaded) patch for training, as the trainer's
 * configure_rotation_dummyDA_mirroring_and_inital_patch_size computes it: 2D patches get one
 * rotation, dummy-2D 3D patches are enlarged in-plane only and keep axis 0.
 */
export function initialPatchSize(patchSize: readonly number[], rotationRange: readonly [number, number], dummy2d: boolean): number[] {
  if (patchSize.length === 3 && dummy2d) {
    return [patchSize[0], ...getPatchSize(patchSize.slice(1), rotationRange, rotationRange, rotationRange, INITIAL_PATCH_SCALE_RANGE)];
  }
  return getPatchSize(patchSize, rotationRange, rotationRange, rotationRange, INITIAL_PATCH_SCALE_RANGE);
}

/** 2D configurations are sampled as pseudo-3D: one slice along axis 0. */
export function asPseudo3d(patch: readonly number[]): number[] {
  return patch.length === 2 ? [1, ...patch] : [...patch];
}

export interface BoxBounds {
  /** Lowest and highest start per axis (both inclusive; may lie outside the image: padded). */
  lb: number[];
  ub: number[];
}

/**
 * get_bbox's bounds: need_to_pad = loaded − final patch, raised so that shape + need_to_pad covers
 * the loaded patch; lb = (−need_to_pad) // 2 (Python floor division, i.e. −ceil(n/2)),
 * ub = shape + n // 2 + n % 2 − loaded.
 */
export function bboxBounds(shape: readonly number[], loadedPatch: readonly number[], finalPatch: readonly number[]): BoxBounds {
  const lb: number[] = [];
  const ub: number[] = [];
  shape.forEach((s, d) => {
    let n = loadedPatch[d] - finalPatch[d];
    if (n + s < loadedPatch[d]) n = loadedPatch[d] - s;
    lb.push(floorDiv(-n, 2));
    ub.push(s + floorDiv(n, 2) + (n % 2) - loadedPatch[d]);
  });
  return { lb, ub };
}

/** Sample j of a batch of b is forced to contain foreground when j ≥ round(b · (1 − percent)). */
export function isForcedForeground(j: number, batchSize: number, oversamplePercent: number): boolean {
  return j >= roundHalfEven(batchSize * (1 - oversamplePercent));
}

/** The key under which preprocessing stores "annotated voxels" of ignore-label datasets: `(-1, 0, 1, ...)`. */
export function annotatedClassesKey(allLabels: readonly number[]): string {
  return classKey([-1, ...allLabels]);
}

export interface BboxChoice {
  start: number[];
  /** The class key whose voxel the patch was centred on, if any. */
  selectedClass: string | null;
}

/**
 * One sample's bounding box start (end = start + loaded patch), as nnU-Net's get_bbox: random
 * within [lb, ub]; or, when forced (or for non-forced samples of ignore-label datasets, the
 * annotated voxels), centred on a stored voxel of a class chosen uniformly among the non-empty
 * ones, clamped below at lb only. No candidate voxel → random.
 */
export function chooseBbox(
  shape: readonly number[],
  loadedPatch: readonly number[],
  finalPatch: readonly number[],
  forceForeground: boolean,
  classLocations: ClassLocations | undefined,
  ignoreKey: string | null,
  rng: DecisionRng,
): BboxChoice {
  const { lb, ub } = bboxBounds(shape, loadedPatch, finalPatch);
  const random = (): BboxChoice => ({ start: lb.map((l, d) => rng.intInclusive(l, ub[d])), selectedClass: null });
  if (!forceForeground && ignoreKey === null) return random();

  let selected: string | null;
  if (!forceForeground) {
    selected = (classLocations?.[ignoreKey as string]?.length ?? 0) > 0 ? (ignoreKey as string) : null;
  } else {
    let eligible = Object.keys(classLocations ?? {}).filter((k) => (classLocations?.[k].length ?? 0) > 0);
    // The annotated-voxels key is a fallback only: forced samples should hit real foreground.
    if (ignoreKey !== null && eligible.length > 1) eligible = eligible.filter((k) => k !== ignoreKey);
    selected = eligible.length > 0 ? eligible[rng.index(eligible.length)] : null;
  }
  const voxels = selected === null ? undefined : classLocations?.[selected];
  if (voxels === undefined || voxels.length === 0) return random();
  const voxel = voxels[rng.index(voxels.length)];
  return { start: lb.map((l, d) => Math.max(l, voxel[d + 1] - floorDiv(loadedPatch[d], 2))), selectedClass: selected };
}

/** 1 / cumprod(strides) over the stages, without the last (§5.4); the first scale is all ones. */
export function deepSupervisionScales(stageStrides: readonly (readonly number[])[]): number[][] {
  const scales: number[][] = [];
  let cum = stageStrides[0].map(() => 1);
  for (const stride of stageStrides) {
    cum = cum.map((c, d) => c * stride[d]);
    scales.push(cum.map((c) => 1 / c));
  }
  return scales.slice(0, -1);
}

/** Target shape at a deep-supervision scale: round(patch · s) per axis (Python round). */
export function scaledShape(patch: readonly number[], scale: readonly number[]): number[] {
  return patch.map((p, d) => roundHalfEven(p * scale[d]));
}
