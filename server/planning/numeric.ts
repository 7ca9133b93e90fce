// The numeric semantics of numpy / Python that the planner must share with nnU-Net (REFERENCE
// Appendix A): Python's round() (half to even), np.percentile's default linear method (including
// its virtual-index formula and two-sided lerp), np.median, and numpy's float32 results.

/** Python 3 round(x): to the nearest integer, ties to the even one. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`cannot round ${x}`);
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** numpy's lerp: evaluated from the nearer end so that t = 1 gives b exactly. */
function lerp(a: number, b: number, t: number): number {
  const d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

/** Where np.percentile(..., method='linear') looks in a sorted array of n values. */
export function percentileIndex(n: number, percent: number): { lo: number; hi: number; t: number } {
  const q = percent / 100;
  // numpy's _compute_virtual_index with alpha = beta = 1, spelled as numpy evaluates it.
  const virtual = n * q + (1 - q) - 1;
  const lo = Math.min(Math.max(Math.floor(virtual), 0), n - 1);
  const hi = Math.min(lo + 1, n - 1);
  return { lo, hi, t: virtual - Math.floor(virtual) };
}

/** np.percentile of an ascending array (linear interpolation). */
export function percentileOfSorted(sorted: ArrayLike<number>, percent: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty array');
  const { lo, hi, t } = percentileIndex(sorted.length, percent);
  return lerp(sorted[lo], sorted[hi], t);
}

/** np.percentile(values, percent, axis=0) of plain numbers. */
export function percentile(values: readonly number[], percent: number): number {
  return percentileOfSorted(Float64Array.from(values).sort(), percent);
}

/** np.median: the mean of the two middle values for even counts. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty array');
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Column-wise np.median / np.percentile of rows (axis 0). */
export function medianPerAxis(rows: readonly (readonly number[])[]): number[] {
  return rows[0].map((_, k) => median(rows.map((r) => r[k])));
}

export function percentilePerAxis(rows: readonly (readonly number[])[], percent: number): number[] {
  return rows[0].map((_, k) => percentile(rows.map((r) => r[k]), percent));
}

export const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/**
 * Percentile of a multiset given as ascending distinct values with their counts — the same number
 * np.percentile gives on the expanded array, without expanding it.
 */
export function weightedPercentile(values: ArrayLike<number>, cumulative: ArrayLike<number>, percent: number): number {
  const n = cumulative[cumulative.length - 1];
  const { lo, hi, t } = percentileIndex(n, percent);
  return lerp(values[rankToIndex(cumulative, lo)], values[rankToIndex(cumulative, hi)], t);
}

/** The index of the distinct value holding rank r (0-based) given inclusive cumulative counts. */
function rankToIndex(cumulative: ArrayLike<number>, r: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid] > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
