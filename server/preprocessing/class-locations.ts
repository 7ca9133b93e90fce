// Foreground locations for oversampling (nnU-Net v2's _sample_foreground_locations, REFERENCE §4.4):
// per class or region, max(min(10000, n), ceil(0.01 n)) voxels drawn without replacement with
// numpy's legacy RandomState(1234).choice — reproduced draw for draw, one generator per case shared
// by the classes in order — so the coordinates are the very ones nnU-Net stores.
import { RandomState } from '../util/mt19937.js';

/** A label, or a region given by the labels it unites. */
export type ClassOrRegion = number | readonly number[];

/** `(channel = 0, x, y, z)` coordinates per class, keyed as nnU-Net's dict keys print. */
export type ClassLocations = Record<string, number[][]>;

export const CLASS_LOCATION_SEED = 1234;
export const MIN_NUM_SAMPLES = 10000;
export const MIN_PERCENT_COVERAGE = 0.01;

/** The key of a class in properties: `1` for a label, `(1, 2)` for a region (Python's tuple repr). */
export function classKey(c: ClassOrRegion): string {
  if (typeof c === 'number') return String(c);
  return c.length === 1 ? `(${c[0]},)` : `(${c.join(', ')})`;
}

/** How many locations nnU-Net keeps for a class of n voxels. */
export function sampleCount(n: number): number {
  return Math.max(Math.min(MIN_NUM_SAMPLES, n), Math.ceil(n * MIN_PERCENT_COVERAGE));
}

/**
 * Draws `k` distinct offsets from [0, n) as legacy `RandomState.choice(n, k, replace=False)` does:
 * the first k entries of `permutation(n)` (RandomState.choiceWithoutReplacement, on a typed array
 * because classes can have millions of voxels).
 */
export function choiceWithoutReplacement(rs: RandomState, n: number, k: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const j = rs.interval(i);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm.subarray(0, k);
}

/**
 * Samples locations of every class in `classes` from the (resampled) segmentation `seg` of shape
 * [x, y, z]. Classes absent from seg get an empty list.
 */
export function sampleClassLocations(
  seg: ArrayLike<number>,
  shape: readonly number[],
  classes: readonly ClassOrRegion[],
  seed = CLASS_LOCATION_SEED,
): ClassLocations {
  const requested = new Set<number>();
  for (const c of classes) for (const l of typeof c === 'number' ? [c] : c) requested.add(l);
  // Voxel indices of every requested label, in C order (argwhere order).
  const counts = new Map<number, number>();
  for (let i = 0; i < seg.length; i++) {
    const v = seg[i];
    if (requested.has(v)) counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const voxels = new Map<number, Int32Array>();
  const filled = new Map<number, number>();
  for (const [label, n] of counts) {
    voxels.set(label, new Int32Array(n));
    filled.set(label, 0);
  }
  for (let i = 0; i < seg.length; i++) {
    const list = voxels.get(seg[i]);
    if (list === undefined) continue;
    const f = filled.get(seg[i]) as number;
    list[f] = i;
    filled.set(seg[i], f + 1);
  }

  const rs = new RandomState(seed);
  const [, n1, n2] = shape;
  const out: ClassLocations = {};
  for (const c of classes) {
    const labels = typeof c === 'number' ? [c] : [...c];
    const parts = labels.flatMap((l) => (voxels.has(l) ? [voxels.get(l) as Int32Array] : []));
    const total = parts.reduce((s, p) => s + p.length, 0);
    if (total === 0) {
      out[classKey(c)] = [];
      continue;
    }
    const offsets = choiceWithoutReplacement(rs, total, sampleCount(total));
    const coords: number[][] = new Array(offsets.length);
    for (let s = 0; s < offsets.length; s++) {
      let o = offsets[s];
      let p = 0;
      while (o >= parts[p].length) o -= parts[p++].length;
      const flat = parts[p][o];
      const x = Math.floor(flat / (n1 * n2));
      const rest = flat - x * n1 * n2;
      const y = Math.floor(rest / n2);
      coords[s] = [0, x, y, rest - y * n2];
    }
    out[classKey(c)] = coords;
  }
  return out;
}
