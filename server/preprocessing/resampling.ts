// Resampling to a target shape as nnU-Net v2's resample_data_or_seg_to_shape (default_resampling.py)
// for images, probabilities and logits: cubic B-spline clipped to the input range, the new-shape and
// separate-z rules (in plane with `order`, then `order_z` along the coarse axis when the spacing
// anisotropy exceeds 3). Segmentations: segmentation-resampling.ts. Departures: work is done axis by
// axis (same result to ~1e-16), shrinking axes first; logits stay float32 where nnU-Net keeps float16.
import type { ResamplingKwargs } from '../planning/plans.js';
import { planAxis, resampleAxis, type InterpolationOrder, type Volume } from './interpolation.js';

export type Shape3 = readonly [number, number, number] | readonly number[];

/** nnU-Net's ANISO_THRESHOLD. */
export const ANISOTROPY_THRESHOLD = 3;

export interface ResampleOptions {
  /** Order of the full (or in-plane, for separate z) interpolation: 3 cubic, 1 linear, 0 nearest. */
  order: InterpolationOrder;
  /** Order along the coarse axis in separate-z mode. */
  orderZ: InterpolationOrder;
  /** null/undefined: decide by the anisotropy rule. */
  forceSeparateZ?: boolean | null;
  anisotropyThreshold?: number;
}

/** Options from a configuration's `resampling_fn_*_kwargs`. */
export function resampleOptionsFromKwargs(kwargs: Partial<ResamplingKwargs>, defaults: { order: InterpolationOrder }): ResampleOptions {
  return {
    order: checkOrder(kwargs.order ?? defaults.order, 'order'),
    orderZ: checkOrder(kwargs.order_z ?? 0, 'order_z'),
    forceSeparateZ: kwargs.force_separate_z ?? null,
  };
}

function checkOrder(order: number, what: string): InterpolationOrder {
  if (order === 0 || order === 1 || order === 3) return order;
  throw new RangeError(`resampling ${what} ${order} is not supported (0, 1 and 3 are)`);
}

/** Python's round(): halves go to the even neighbour. */
export function pythonRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function checkSpacing(spacing: readonly number[], what: string): void {
  for (const s of spacing) {
    if (!(Number.isFinite(s) && s > 0)) throw new RangeError(`${what} spacing [${spacing.join(', ')}] must be finite and positive`);
  }
}

/** `int(round(old_spacing / new_spacing * old_shape))` per axis, in nnU-Net's operation order. */
export function computeNewShape(shape: Shape3, oldSpacing: readonly number[], newSpacing: readonly number[]): number[] {
  if (shape.length !== oldSpacing.length || shape.length !== newSpacing.length) {
    throw new RangeError(`shape ${shape.length}D, spacing ${oldSpacing.length}D and target spacing ${newSpacing.length}D differ`);
  }
  checkSpacing(oldSpacing, 'current');
  checkSpacing(newSpacing, 'target');
  const out = shape.map((n, i) => pythonRound((oldSpacing[i] / newSpacing[i]) * n));
  if (out.some((n) => n < 1)) {
    throw new RangeError(
      `resampling shape [${shape.join(', ')}] from spacing [${oldSpacing.join(', ')}] to [${newSpacing.join(', ')}] ` +
        `gives [${out.join(', ')}]: the image is thinner than half a target voxel`,
    );
  }
  return out;
}

export interface SeparateZ {
  separateZ: boolean;
  /** The coarse axis when separateZ. */
  axis: number | undefined;
}

const lowResAxes = (spacing: readonly number[]): number[] => {
  const max = Math.max(...spacing);
  return spacing.flatMap((s, i) => (s === max ? [i] : []));
};

const anisotropic = (spacing: readonly number[], threshold: number) => Math.max(...spacing) / Math.min(...spacing) > threshold;

/** nnU-Net's determine_do_sep_z_and_axis. */
export function determineSeparateZ(
  forceSeparateZ: boolean | null | undefined,
  currentSpacing: readonly number[],
  newSpacing: readonly number[],
  threshold = ANISOTROPY_THRESHOLD,
): SeparateZ {
  let separateZ: boolean;
  let axes: number[] | undefined;
  if (forceSeparateZ !== null && forceSeparateZ !== undefined) {
    separateZ = forceSeparateZ;
    axes = forceSeparateZ ? lowResAxes(currentSpacing) : undefined;
  } else if (anisotropic(currentSpacing, threshold)) {
    separateZ = true;
    axes = lowResAxes(currentSpacing);
  } else if (anisotropic(newSpacing, threshold)) {
    separateZ = true;
    axes = lowResAxes(newSpacing);
  } else {
    separateZ = false;
  }
  // Two or three axes sharing the coarsest spacing (e.g. 0.24 x 1.25 x 1.25) means no single slice axis.
  if (axes !== undefined && axes.length !== 1) separateZ = false;
  return { separateZ, axis: separateZ ? axes?.[0] : undefined };
}

export const product = (s: readonly number[]) => s.reduce((p, n) => p * n, 1);

/**
 * Two ping-pong float64 buffers reused by successive passes, channels and labels: fresh pages
 * cost more than the interpolation itself on large volumes, so they are touched once per call.
 */
export class Scratch {
  private readonly buffers: [Float64Array, Float64Array] = [new Float64Array(0), new Float64Array(0)];

  get(which: 0 | 1, length: number): Float64Array {
    if (this.buffers[which].length < length) this.buffers[which] = new Float64Array(length);
    return this.buffers[which].subarray(0, length);
  }
}

/**
 * Resamples a volume along `axes` to `newShape` with one separable pass per axis whose length
 * changes, most-shrinking axis first so the intermediate volumes stay small. The last pass writes
 * into `out` when given (which must not alias `src`), otherwise into `scratch`; with nothing to do,
 * `src` is copied into `out` or returned as is.
 */
export function resampleVolume(
  src: Volume,
  shape: Shape3,
  newShape: Shape3,
  order: InterpolationOrder,
  axes: readonly number[],
  scratch: Scratch = new Scratch(),
  out?: Volume,
): Volume {
  const todo = axes.filter((a) => shape[a] !== newShape[a]).sort((a, b) => newShape[a] / shape[a] - newShape[b] / shape[b]);
  if (todo.length === 0) {
    if (out === undefined) return src;
    out.set(src);
    return out;
  }
  let cur = src;
  const dims = [...shape];
  todo.forEach((a, i) => {
    const inDims = [...dims];
    dims[a] = newShape[a];
    const next = i === todo.length - 1 && out !== undefined ? out : scratch.get((i % 2) as 0 | 1, product(dims));
    resampleAxis(cur, inDims, a, planAxis(inDims[a], newShape[a], order), next);
    cur = next;
  });
  return cur;
}

export function withAxis(dims: readonly number[], axis: number, n: number): number[] {
  const d = [...dims];
  d[axis] = n;
  return d;
}

export function checkShapes(length: number, channels: number, shape: Shape3, newShape: Shape3): void {
  if (shape.length !== 3 || newShape.length !== 3) throw new RangeError('resampling expects 3D shapes (x, y, z)');
  for (const n of [...shape, ...newShape]) {
    if (!(Number.isSafeInteger(n) && n >= 1)) throw new RangeError(`invalid shape [${shape.join(', ')}] -> [${newShape.join(', ')}]`);
  }
  if (length !== channels * product(shape)) {
    throw new RangeError(`array of ${length} values does not hold ${channels} channel(s) of shape [${shape.join(', ')}]`);
  }
}

export const sameShape = (a: Shape3, b: Shape3) => a.length === b.length && a.every((n, i) => n === b[i]);

/**
 * Images, probabilities or logits `(c, x, y, z)` to `newShape` (resample_data_or_seg_to_shape with
 * is_seg=False). Cubic/linear output is clipped to the input's range: the whole channel, or each
 * slice in separate-z mode, as skimage's resize(clip=True) does per call. Unchanged shape returns
 * `data` itself, as nnU-Net does.
 */
export function resampleDataToShape(
  data: Float32Array,
  channels: number,
  shape: Shape3,
  newShape: Shape3,
  currentSpacing: readonly number[],
  newSpacing: readonly number[],
  options: ResampleOptions,
): Float32Array {
  checkShapes(data.length, channels, shape, newShape);
  if (sameShape(shape, newShape)) return data;
  const { separateZ, axis } = determineSeparateZ(options.forceSeparateZ, currentSpacing, newSpacing, options.anisotropyThreshold);
  const nIn = product(shape);
  const nOut = product(newShape);
  const out = new Float32Array(channels * nOut);
  const scratch = new Scratch();
  for (let c = 0; c < channels; c++) {
    const channel = data.subarray(c * nIn, (c + 1) * nIn);
    const target = out.subarray(c * nOut, (c + 1) * nOut);
    if (!separateZ || axis === undefined) {
      resampleVolume(channel, shape, newShape, options.order, [0, 1, 2], scratch, target);
      // Bounds taken from float32 input are float32 values, so clipping after the float32
      // rounding equals numpy's clip in float64 followed by the cast.
      const [lo, hi] = minMax(channel, 0, nIn);
      clip(target, lo, hi);
    } else if (axis === 0 && options.orderZ === 0) {
      slicewiseNearestZ(channel, shape, newShape, options.order, scratch, target);
    } else {
      const inPlane = [0, 1, 2].filter((a) => a !== axis);
      const midShape = withAxis(newShape, axis, shape[axis]);
      const mid = resampleVolume(channel, shape, midShape, options.order, inPlane, scratch);
      if (mid !== channel) clipSlices(mid, midShape, axis, channel, shape);
      // One pass (or a copy) into the output; a fresh scratch so nothing aliases `mid`.
      resampleVolume(mid, midShape, newShape, options.orderZ, [axis], new Scratch(), target);
    }
  }
  return out;
}

/**
 * Separate z along axis 0 with nearest neighbour between slices (nnU-Net's default after
 * transpose_forward): each input slice is resized in plane once, clipped to its own range and
 * copied to every output slice that picks it, so no full-size intermediate volume is needed.
 */
function slicewiseNearestZ(channel: Float32Array, shape: Shape3, newShape: Shape3, order: InterpolationOrder, scratch: Scratch, target: Float32Array): void {
  const [n0, n1, n2] = shape;
  const [m0, m1, m2] = newShape;
  const pick = planAxis(n0, m0, 0).start; // non-decreasing input slice per output slice
  const sliceIn = n1 * n2;
  const sliceOut = m1 * m2;
  let k = 0;
  for (let s = 0; s < n0 && k < m0; s++) {
    if (pick[k] !== s) continue;
    const src = channel.subarray(s * sliceIn, (s + 1) * sliceIn);
    const resized = resampleVolume(src, [1, n1, n2], [1, m1, m2], order, [1, 2], scratch);
    const first = target.subarray(k * sliceOut, (k + 1) * sliceOut);
    first.set(resized);
    if (resized !== src) {
      const [lo, hi] = minMax(src, 0, sliceIn);
      clip(first, lo, hi);
    }
    for (k++; k < m0 && pick[k] === s; k++) target.copyWithin(k * sliceOut, (k - 1) * sliceOut, k * sliceOut);
  }
}

function minMax(a: ArrayLike<number>, from: number, to: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = from; i < to; i++) {
    const v = a[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function clip(a: Volume, lo: number, hi: number, from = 0, to = a.length): void {
  for (let i = from; i < to; i++) {
    const v = a[i];
    if (v < lo) a[i] = lo;
    else if (v > hi) a[i] = hi;
  }
}

/** Clips every slice along `axis` of `out` to the range of the same slice of `input`. */
function clipSlices(out: Volume, outShape: Shape3, axis: number, input: ArrayLike<number>, inShape: Shape3): void {
  const slices = inShape[axis];
  const lo = new Float64Array(slices).fill(Infinity);
  const hi = new Float64Array(slices).fill(-Infinity);
  const [i0, i1, i2] = inShape;
  let i = 0;
  for (let a = 0; a < i0; a++) {
    for (let b = 0; b < i1; b++) {
      for (let c = 0; c < i2; c++, i++) {
        const s = axis === 0 ? a : axis === 1 ? b : c;
        const v = input[i];
        if (v < lo[s]) lo[s] = v;
        if (v > hi[s]) hi[s] = v;
      }
    }
  }
  const [o0, o1, o2] = outShape;
  i = 0;
  for (let a = 0; a < o0; a++) {
    for (let b = 0; b < o1; b++) {
      for (let c = 0; c < o2; c++, i++) {
        const s = axis === 0 ? a : axis === 1 ? b : c;
        const v = out[i];
        if (v < lo[s]) out[i] = lo[s];
        else if (v > hi[s]) out[i] = hi[s];
      }
    }
  }
}

/**
 * Export (REFERENCE §7.6): logits `(K, x, y, z)` from the network grid back to the cropped raw
 * grid with the configuration's `resampling_fn_probabilities_kwargs` (linear, order_z 0).
 */
export function resampleLogitsToShape(
  logits: Float32Array,
  channels: number,
  shape: Shape3,
  newShape: Shape3,
  currentSpacing: readonly number[],
  newSpacing: readonly number[],
  kwargs: Partial<ResamplingKwargs>,
): Float32Array {
  return resampleDataToShape(logits, channels, shape, newShape, currentSpacing, newSpacing, resampleOptionsFromKwargs(kwargs, { order: 1 }));
}
