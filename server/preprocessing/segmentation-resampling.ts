// Segmentation resampling as nnU-Net v2's resample_data_or_seg_to_shape(is_seg=True) with
// batchgenerators' resize_segmentation: every label's binary mask is interpolated (linear by
// default), voxels >= 0.5 take the label, ascending labels overwrite, 0 where none reaches 0.5.
// For linear masks all labels are decided in one sweep, summing each label's taps in scipy's tap
// and product order, so results are bit-identical to scipy rather than merely close.
import { planAxis, type InterpolationOrder } from './interpolation.js';
import {
  checkShapes,
  determineSeparateZ,
  product,
  resampleVolume,
  sameShape,
  Scratch,
  withAxis,
  type ResampleOptions,
  type Shape3,
} from './resampling.js';

export type LabelArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Float32Array | Float64Array;

/** Sorted distinct values of a label map. */
export function uniqueLabels(seg: ArrayLike<number>): number[] {
  const seen = new Set<number>();
  let last = NaN;
  for (let i = 0; i < seg.length; i++) {
    const v = seg[i];
    // Labels come in runs; only a change of value needs the set.
    if (v !== last) {
      seen.add(v);
      last = v;
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/**
 * A segmentation (one channel) to `newShape`. Separate z: label-wise in plane, then nearest
 * (order_z 0) or label-wise `order_z` (> 0.5, as nnU-Net rounds the mask) along the coarse axis.
 */
export function resampleSegToShape(
  seg: LabelArray,
  shape: Shape3,
  newShape: Shape3,
  currentSpacing: readonly number[],
  newSpacing: readonly number[],
  options: ResampleOptions,
): Int16Array {
  checkShapes(seg.length, 1, shape, newShape);
  const labels = seg instanceof Int16Array ? seg : Int16Array.from(seg);
  if (sameShape(shape, newShape)) return labels === seg ? labels.slice() : labels;
  const { separateZ, axis } = determineSeparateZ(options.forceSeparateZ, currentSpacing, newSpacing, options.anisotropyThreshold);
  if (!separateZ || axis === undefined) return resizeSegmentation(labels, shape, newShape, options.order, [0, 1, 2]);
  const midShape = withAxis(newShape, axis, shape[axis]);
  const inPlane = [0, 1, 2].filter((a) => a !== axis);
  const mid = resizeSegmentation(labels, shape, midShape, options.order, inPlane);
  if (midShape[axis] === newShape[axis]) return mid === seg ? mid.slice() : mid;
  if (options.orderZ === 0) return nearestAlongAxis(mid, midShape, newShape, axis);
  return labelwise(Float64Array.from(mid), midShape, newShape, options.orderZ, [axis], 'aboveHalf');
}

/** resize_segmentation along `axes` (the others untouched). */
function resizeSegmentation(seg: Int16Array, shape: Shape3, newShape: Shape3, order: InterpolationOrder, axes: readonly number[]): Int16Array {
  if (sameShape(shape, newShape)) return seg;
  if (order === 1) return linearLabels(seg, shape, newShape, axes);
  return labelwise(Float64Array.from(seg), shape, newShape, order, axes, 'atLeastHalf');
}

interface Taps {
  /** Two input indices and weights per output index; an untouched axis repeats its index with weight 0. */
  lo: Int32Array;
  hi: Int32Array;
  w0: Float64Array;
  w1: Float64Array;
}

function axisTaps(nIn: number, nOut: number, resampled: boolean): Taps {
  if (!resampled) {
    const idx = Int32Array.from({ length: nOut }, (_, k) => k);
    return { lo: idx, hi: idx, w0: new Float64Array(nOut).fill(1), w1: new Float64Array(nOut) };
  }
  const plan = planAxis(nIn, nOut, 1);
  const w0 = new Float64Array(nOut);
  const w1 = new Float64Array(nOut);
  for (let k = 0; k < nOut; k++) {
    w0[k] = plan.weights[2 * k];
    w1[k] = plan.weights[2 * k + 1];
  }
  return { lo: plan.start, hi: plan.next, w0, w1 };
}

/**
 * Label-wise linear resize in one sweep. Per output voxel, each label's value is scipy's sum over
 * the 2 x 2 x 2 taps (last axis fastest) of ((1 * w_axis0) * w_axis1) * w_axis2 over the taps
 * holding that label; the result is the largest label whose value is >= 0.5, else 0. Zero-weight
 * taps (untouched axes) add +0, which changes no sum, as in scipy.
 */
function linearLabels(seg: Int16Array, shape: Shape3, newShape: Shape3, axes: readonly number[]): Int16Array {
  const [t0, t1, t2] = [0, 1, 2].map((d) => axisTaps(shape[d], newShape[d], axes.includes(d) && shape[d] !== newShape[d]));
  const [, n1, n2] = shape;
  const [m0, m1, m2] = newShape;
  const out = new Int16Array(m0 * m1 * m2);
  const label = new Int32Array(8);
  const weight = new Float64Array(8);
  const sumLabel = new Int32Array(8);
  const sum = new Float64Array(8);
  const { lo: lo2, hi: hi2, w0: w02, w1: w12 } = t2;
  let o = 0;
  for (let a = 0; a < m0; a++) {
    const va0 = 1 * t0.w0[a];
    const va1 = 1 * t0.w1[a];
    for (let b = 0; b < m1; b++) {
      const r00 = (t0.lo[a] * n1 + t1.lo[b]) * n2;
      const r01 = (t0.lo[a] * n1 + t1.hi[b]) * n2;
      const r10 = (t0.hi[a] * n1 + t1.lo[b]) * n2;
      const r11 = (t0.hi[a] * n1 + t1.hi[b]) * n2;
      const wb0 = t1.w0[b];
      const wb1 = t1.w1[b];
      for (let c = 0; c < m2; c++, o++) {
        const c0 = lo2[c];
        const c1 = hi2[c];
        label[0] = seg[r00 + c0];
        label[1] = seg[r00 + c1];
        label[2] = seg[r01 + c0];
        label[3] = seg[r01 + c1];
        label[4] = seg[r10 + c0];
        label[5] = seg[r10 + c1];
        label[6] = seg[r11 + c0];
        label[7] = seg[r11 + c1];
        const l0 = label[0];
        if (l0 === label[1] && l0 === label[2] && l0 === label[3] && l0 === label[4] && l0 === label[5] && l0 === label[6] && l0 === label[7]) {
          out[o] = l0; // inside a region all weights go to one label and sum to 1
          continue;
        }
        const wc0 = w02[c];
        const wc1 = w12[c];
        weight[0] = va0 * wb0 * wc0;
        weight[1] = va0 * wb0 * wc1;
        weight[2] = va0 * wb1 * wc0;
        weight[3] = va0 * wb1 * wc1;
        weight[4] = va1 * wb0 * wc0;
        weight[5] = va1 * wb0 * wc1;
        weight[6] = va1 * wb1 * wc0;
        weight[7] = va1 * wb1 * wc1;
        let distinct = 0;
        for (let k = 0; k < 8; k++) {
          let j = 0;
          while (j < distinct && sumLabel[j] !== label[k]) j++;
          if (j === distinct) {
            sumLabel[j] = label[k];
            sum[j] = 0;
            distinct++;
          }
          sum[j] += weight[k];
        }
        let best = 0;
        let found = false;
        for (let j = 0; j < distinct; j++) {
          if (sum[j] >= 0.5 && (!found || sumLabel[j] > best)) {
            best = sumLabel[j];
            found = true;
          }
        }
        out[o] = best;
      }
    }
  }
  return out;
}

/**
 * Label-wise resampling through separable passes (cubic masks, or one linear axis): each label's
 * mask is resampled and painted where it passes the threshold, in ascending label order.
 */
function labelwise(
  labels: Float64Array,
  shape: Shape3,
  newShape: Shape3,
  order: InterpolationOrder,
  axes: readonly number[],
  rule: 'atLeastHalf' | 'aboveHalf',
): Int16Array {
  const out = new Int16Array(product(newShape));
  const scratch = new Scratch();
  if (order === 0) {
    out.set(resampleVolume(labels, shape, newShape, 0, axes, scratch));
    return out;
  }
  const values = uniqueLabels(labels);
  const hasNegative = values.some((l) => l < 0);
  const mask = new Float64Array(labels.length);
  for (const label of values) {
    // Zero is the initial value; it only has to be painted when it can overwrite a negative label.
    if (label === 0 && !hasNegative) continue;
    for (let i = 0; i < labels.length; i++) mask[i] = labels[i] === label ? 1 : 0;
    const r = resampleVolume(mask, shape, newShape, order, axes, scratch);
    if (rule === 'atLeastHalf') {
      for (let i = 0; i < r.length; i++) if (r[i] >= 0.5) out[i] = label;
    } else {
      for (let i = 0; i < r.length; i++) if (r[i] > 0.5) out[i] = label;
    }
  }
  return out;
}

/** Nearest neighbour along one axis (rows are copied). */
function nearestAlongAxis(src: Int16Array, shape: Shape3, newShape: Shape3, axis: number): Int16Array {
  const plan = planAxis(shape[axis], newShape[axis], 0);
  const outer = product(shape.slice(0, axis));
  const inner = product(shape.slice(axis + 1));
  const n = shape[axis];
  const out = new Int16Array(product(newShape));
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < plan.nOut; k++) {
      const a = (o * n + plan.start[k]) * inner;
      out.set(src.subarray(a, a + inner), (o * plan.nOut + k) * inner);
    }
  }
  return out;
}
