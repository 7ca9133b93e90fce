// One-axis interpolation kernels with scipy.ndimage's zoom/map_coordinates semantics as skimage's
// resize calls them (grid_mode pixel-centre alignment, mode 'nearest'): cubic B-spline with scipy's
// prefilter (edge-padded by 12, mirror-initialised recursion), linear, and nearest. Cubic and linear
// tensor-product interpolation is separable, so a 3D resize is a sequence of these passes; the sums
// are then ordered per axis rather than per tap, which changes results only at the 1e-16 level.

/** scipy pads the input by this many edge values before the spline prefilter in mode 'nearest'. */
export const SPLINE_PAD = 12;
/** Pole of the cubic B-spline prefilter, sqrt(3) - 2: the double nearest scipy's 36-digit literal (Math.sqrt(3) - 2 is one ulp off). */
export const CUBIC_POLE = -0.2679491924311227;
/** Overall gain of the cubic prefilter, computed as scipy does: (1 - z)(1 - 1/z) = 6 up to rounding. */
export const CUBIC_GAIN = (1 - CUBIC_POLE) * (1 - 1 / CUBIC_POLE);
/**
 * Terms of the mirror initial value that matter: |z|^40 ≈ 1e-23, far below double precision of the
 * sum, so stopping there changes nothing visible while keeping the initialisation O(1) per line.
 */
const INIT_HORIZON = 40;

export type InterpolationOrder = 0 | 1 | 3;

/** Volumes the passes read and write; interpolation itself always runs in float64. */
export type Volume = Float32Array | Float64Array;

/** Precomputed sample positions and weights of one axis: output k reads `taps` inputs from start[k]. */
export interface AxisPlan {
  order: InterpolationOrder;
  nIn: number;
  nOut: number;
  taps: number;
  /** First input index of output k (into the padded line for cubic). */
  start: Int32Array;
  /** Second tap index for linear (clamped to the line, weight 0 when clamped). */
  next: Int32Array;
  /** `taps` weights per output index. */
  weights: Float64Array;
}

/** Input coordinate sampled by output index k: pixel centres aligned, as zoom(grid_mode=True). */
export function gridCoordinate(k: number, nIn: number, nOut: number): number {
  return (k + 0.5) * (nIn / nOut) - 0.5;
}

/** scipy's cubic B-spline weights for the four taps around `cc` (get_spline_interpolation_weights). */
export function cubicWeights(cc: number, out: Float64Array, offset = 0): void {
  const x = cc - Math.floor(cc);
  const y = x;
  const z = 1 - x;
  const w1 = (y * y * (y - 2) * 3 + 4) / 6;
  const w2 = (z * z * (z - 2) * 3 + 4) / 6;
  const w0 = (z * z * z) / 6;
  out[offset] = w0;
  out[offset + 1] = w1;
  out[offset + 2] = w2;
  // scipy makes the weights sum to one by deriving the last from the others.
  let w3 = 1.0;
  w3 -= w0;
  w3 -= w1;
  w3 -= w2;
  out[offset + 3] = w3;
}

/** Positions and weights for resampling an axis of length nIn to nOut with the given order. */
export function planAxis(nIn: number, nOut: number, order: InterpolationOrder): AxisPlan {
  if (!(nIn >= 1 && nOut >= 1)) throw new RangeError(`cannot resample an axis of length ${nIn} to ${nOut}`);
  const taps = order === 3 ? 4 : order === 1 ? 2 : 1;
  const start = new Int32Array(nOut);
  const next = new Int32Array(nOut);
  const weights = new Float64Array(nOut * taps);
  for (let k = 0; k < nOut; k++) {
    let cc = gridCoordinate(k, nIn, nOut);
    if (order === 3) {
      // Coordinates live in the padded line; mode 'nearest' would clamp them to it (never reached).
      cc = Math.min(Math.max(cc + SPLINE_PAD, 0), nIn + 2 * SPLINE_PAD - 1);
      start[k] = Math.floor(cc) - 1;
      cubicWeights(cc, weights, 4 * k);
    } else {
      cc = Math.min(Math.max(cc, 0), nIn - 1); // mode 'nearest' clamps out-of-range coordinates
      if (order === 1) {
        const s = Math.floor(cc);
        const w0 = 1 - (cc - s);
        start[k] = s;
        next[k] = Math.min(s + 1, nIn - 1);
        weights[2 * k] = w0;
        weights[2 * k + 1] = 1.0 - w0;
      } else {
        start[k] = Math.floor(cc + 0.5); // order 0 rounds half up, as scipy's floor(cc + 0.5)
        weights[k] = 1;
      }
    }
  }
  return { order, nIn, nOut, taps, start, next, weights };
}

/**
 * Cubic B-spline prefilter of one line in place: gain, causal recursion with the mirror initial
 * value, anticausal recursion (scipy's apply_filter for modes mirror/nearest). `c[off..off+n)`.
 */
export function prefilterLine(c: Float64Array, n: number, off = 0, applyGain = true): void {
  if (n < 2) return;
  const z = CUBIC_POLE;
  if (applyGain) for (let i = off; i < off + n; i++) c[i] *= CUBIC_GAIN;
  const zn1 = Math.pow(z, n - 1);
  let c0 = c[off] + zn1 * c[off + n - 1];
  let zi = z;
  const last = Math.min(n - 2, INIT_HORIZON);
  for (let i = 1; i <= last; i++) {
    c0 += zi * (c[off + i] + zn1 * c[off + n - 1 - i]);
    zi *= z;
  }
  // The recurrences keep the running value in a local: reading it back from memory would put a
  // store-to-load round trip on the loop-carried dependency.
  let prev = c0 / (1 - zn1 * zn1);
  c[off] = prev;
  for (let i = off + 1; i < off + n; i++) {
    prev = c[i] + z * prev;
    c[i] = prev;
  }
  const e = off + n - 1;
  prev = ((z * c[e - 1] + prev) * z) / (z * z - 1);
  c[e] = prev;
  for (let i = e - 1; i >= off; i--) {
    prev = z * (prev - c[i]);
    c[i] = prev;
  }
}

/**
 * Resamples axis `axis` of a C-order volume of shape `dims` (any rank) into `dst`, whose shape is
 * `dims` with that axis replaced by plan.nOut. The volume is viewed as (outer, n, inner).
 */
export function resampleAxis(src: Volume, dims: readonly number[], axis: number, plan: AxisPlan, dst: Volume): void {
  const n = dims[axis];
  if (n !== plan.nIn) throw new RangeError(`axis ${axis} has length ${n}, the plan expects ${plan.nIn}`);
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < axis; d++) outer *= dims[d];
  for (let d = axis + 1; d < dims.length; d++) inner *= dims[d];
  if (src.length !== outer * n * inner || dst.length !== outer * plan.nOut * inner) {
    throw new RangeError('resampleAxis: array lengths do not match the shape');
  }
  if (plan.order === 3) {
    if (inner === 1) cubicLines(src, outer, n, plan, dst);
    else cubicRows(src, outer, n, inner, plan, dst);
  } else if (plan.order === 1) {
    linearPass(src, outer, n, inner, plan, dst);
  } else {
    nearestPass(src, outer, n, inner, plan, dst);
  }
}

/** Cubic along the last (contiguous) axis: one padded line buffer reused for every line. */
function cubicLines(src: Volume, outer: number, n: number, plan: AxisPlan, dst: Volume): void {
  const N = n + 2 * SPLINE_PAD;
  const line = new Float64Array(N);
  const { nOut, start, weights: W } = plan;
  for (let o = 0; o < outer; o++) {
    const sBase = o * n;
    const first = src[sBase] * CUBIC_GAIN;
    const lastValue = src[sBase + n - 1] * CUBIC_GAIN;
    for (let i = 0; i < SPLINE_PAD; i++) {
      line[i] = first;
      line[SPLINE_PAD + n + i] = lastValue;
    }
    for (let i = 0; i < n; i++) line[SPLINE_PAD + i] = src[sBase + i] * CUBIC_GAIN;
    prefilterLine(line, N, 0, false);
    const dBase = o * nOut;
    for (let k = 0; k < nOut; k++) {
      const s = start[k];
      const w = 4 * k;
      dst[dBase + k] = W[w] * line[s] + W[w + 1] * line[s + 1] + W[w + 2] * line[s + 2] + W[w + 3] * line[s + 3];
    }
  }
}

/**
 * Cubic along a strided axis: a tile of T columns is gathered into an (N × T) buffer so that the
 * recursive filter runs over contiguous rows (cache friendly), then evaluated row by row.
 */
function cubicRows(src: Volume, outer: number, n: number, inner: number, plan: AxisPlan, dst: Volume): void {
  const N = n + 2 * SPLINE_PAD;
  // ~512 KiB of tile keeps the filter passes in cache; at least 16 columns per row, and tiles of
  // equal width so that no narrow remainder tile runs at a fraction of the speed.
  const maxT = Math.max(16, Math.floor(65536 / N));
  const T = Math.ceil(inner / Math.ceil(inner / maxT));
  const buf = new Float64Array(N * T);
  const c0 = new Float64Array(T);
  const { nOut, start, weights: W } = plan;
  const z = CUBIC_POLE;
  const zn1 = Math.pow(z, N - 1);
  const den = 1 - zn1 * zn1;
  const den2 = z * z - 1;
  const last = Math.min(N - 2, INIT_HORIZON);
  for (let o = 0; o < outer; o++) {
    for (let t0 = 0; t0 < inner; t0 += T) {
      const w = Math.min(T, inner - t0);
      for (let i = 0; i < n; i++) {
        const s = (o * n + i) * inner + t0;
        const b = (SPLINE_PAD + i) * T;
        for (let j = 0; j < w; j++) buf[b + j] = src[s + j] * CUBIC_GAIN;
      }
      for (let i = 0; i < SPLINE_PAD; i++) {
        buf.copyWithin(i * T, SPLINE_PAD * T, SPLINE_PAD * T + w);
        buf.copyWithin((SPLINE_PAD + n + i) * T, (SPLINE_PAD + n - 1) * T, (SPLINE_PAD + n - 1) * T + w);
      }
      // Causal pass with the mirror initial value.
      const e = (N - 1) * T;
      for (let j = 0; j < w; j++) c0[j] = buf[j] + zn1 * buf[e + j];
      let zi = z;
      for (let i = 1; i <= last; i++) {
        const r = i * T;
        const m = (N - 1 - i) * T;
        for (let j = 0; j < w; j++) c0[j] += zi * (buf[r + j] + zn1 * buf[m + j]);
        zi *= z;
      }
      for (let j = 0; j < w; j++) buf[j] = c0[j] / den;
      for (let i = 1; i < N; i++) {
        const r = i * T;
        const p = r - T;
        for (let j = 0; j < w; j++) buf[r + j] += z * buf[p + j];
      }
      // Anticausal pass.
      const p = e - T;
      for (let j = 0; j < w; j++) buf[e + j] = ((z * buf[p + j] + buf[e + j]) * z) / den2;
      for (let i = N - 2; i >= 0; i--) {
        const r = i * T;
        const nx = r + T;
        for (let j = 0; j < w; j++) buf[r + j] = z * (buf[nx + j] - buf[r + j]);
      }
      // Evaluate the four taps of every output row.
      for (let k = 0; k < nOut; k++) {
        const s0 = start[k] * T;
        const s1 = s0 + T;
        const s2 = s1 + T;
        const s3 = s2 + T;
        const w0 = W[4 * k];
        const w1 = W[4 * k + 1];
        const w2 = W[4 * k + 2];
        const w3 = W[4 * k + 3];
        const d = (o * nOut + k) * inner + t0;
        for (let j = 0; j < w; j++) dst[d + j] = w0 * buf[s0 + j] + w1 * buf[s1 + j] + w2 * buf[s2 + j] + w3 * buf[s3 + j];
      }
    }
  }
}

function linearPass(src: Volume, outer: number, n: number, inner: number, plan: AxisPlan, dst: Volume): void {
  const { nOut, start, next, weights: W } = plan;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const sBase = o * n;
      const dBase = o * nOut;
      for (let k = 0; k < nOut; k++) dst[dBase + k] = W[2 * k] * src[sBase + start[k]] + W[2 * k + 1] * src[sBase + next[k]];
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < nOut; k++) {
      const a = (o * n + start[k]) * inner;
      const b = (o * n + next[k]) * inner;
      const d = (o * nOut + k) * inner;
      const w0 = W[2 * k];
      const w1 = W[2 * k + 1];
      for (let j = 0; j < inner; j++) dst[d + j] = w0 * src[a + j] + w1 * src[b + j];
    }
  }
}

function nearestPass(src: Volume, outer: number, n: number, inner: number, plan: AxisPlan, dst: Volume): void {
  const { nOut, start } = plan;
  for (let o = 0; o < outer; o++) {
    if (inner === 1) {
      const sBase = o * n;
      const dBase = o * nOut;
      for (let k = 0; k < nOut; k++) dst[dBase + k] = src[sBase + start[k]];
    } else {
      for (let k = 0; k < nOut; k++) {
        const a = (o * n + start[k]) * inner;
        dst.set(src.subarray(a, a + inner), (o * nOut + k) * inner);
      }
    }
  }
}
