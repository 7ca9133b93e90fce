// Sliding-window geometry as nnU-Net v2 predicts (REFERENCE §7.4): centred zero padding up to the
// patch size, tile starts with step 0.5 of the patch, and the Gaussian importance map
// (σ = patch/8, peak scaled to 10, stored in float16 with zeros raised to the smallest value).

/** Python's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Tile start positions along each axis (`compute_steps_for_sliding_window`). */
export function slidingWindowSteps(imageSize: readonly number[], patchSize: readonly number[], stepSize = 0.5): number[][] {
  if (!(stepSize > 0 && stepSize <= 1)) throw new RangeError(`step_size must be in (0, 1], got ${stepSize}`);
  return imageSize.map((size, d) => {
    const patch = patchSize[d];
    if (size < patch) throw new RangeError(`image size ${size} is smaller than the patch ${patch} on axis ${d}; pad first`);
    const targetStep = patch * stepSize;
    const n = Math.ceil((size - patch) / targetStep) + 1;
    if (n === 1) return [0];
    const actual = (size - patch) / (n - 1);
    return Array.from({ length: n }, (_, i) => roundHalfEven(actual * i));
  });
}

/** Padding per axis [before, after] to reach at least `minSize`: centred, odd voxel at the end (acvl pad_nd_image). */
export function paddingToSize(shape: readonly number[], minSize: readonly number[]): [number, number][] {
  return shape.map((s, d) => {
    const diff = Math.max(0, minSize[d] - s);
    return [Math.floor(diff / 2), diff - Math.floor(diff / 2)];
  });
}

/** Rounds float32 values to float16 precision (round to nearest even), keeping float32 storage. */
export function roundToHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  // exponent of the half value; subnormals (a < 2^-14) share the 2^-24 quantum
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  let quantum = 2 ** (e - 10);
  // log2 can be off by one near powers of two
  if (a / quantum >= 2048) quantum *= 2;
  else if (a / quantum < 1024 && e > -14) quantum /= 2;
  const q = a / quantum;
  let r = Math.round(q);
  if (Math.abs(q - Math.floor(q) - 0.5) < 1e-12 && r % 2 !== 0) r -= 1;
  return Math.sign(x) * r * quantum;
}

/** scipy.ndimage's 1-D Gaussian kernel: radius int(4σ + 0.5), weights normalised to sum 1. */
function gaussianKernel1d(sigma: number): Float64Array {
  const radius = Math.floor(4 * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    w[i + radius] = Math.exp((-0.5 * i * i) / (sigma * sigma));
    sum += w[i + radius];
  }
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/**
 * The Gaussian importance map of `compute_gaussian`: a delta at floor(patch/2) filtered with
 * σ_i = patch_i/8 (constant 0 outside, truncate 4σ), scaled to max 10, rounded to float16, zeros
 * replaced by the smallest non-zero value. Separable, so the value is a product of 1-D weights.
 */
export function gaussianImportanceMap(patchSize: readonly number[], sigmaScale = 1 / 8, valueScale = 10): Float32Array {
  const perAxis = patchSize.map((p) => {
    const sigma = p * sigmaScale;
    const centre = Math.floor(p / 2);
    const out = new Float64Array(p);
    if (sigma === 0) {
      out[centre] = 1;
      return out;
    }
    const k = gaussianKernel1d(sigma);
    const radius = (k.length - 1) / 2;
    for (let i = 0; i < p; i++) {
      const off = i - centre;
      out[i] = Math.abs(off) <= radius ? k[off + radius] : 0;
    }
    return out;
  });
  const total = patchSize.reduce((a, b) => a * b, 1);
  const map = new Float64Array(total);
  let max = 0;
  const idx = new Array(patchSize.length).fill(0);
  for (let i = 0; i < total; i++) {
    let v = 1;
    for (let d = 0; d < patchSize.length; d++) v *= perAxis[d][idx[d]];
    map[i] = v;
    if (v > max) max = v;
    for (let d = patchSize.length - 1; d >= 0; d--) {
      if (++idx[d] < patchSize[d]) break;
      idx[d] = 0;
    }
  }
  const out = new Float32Array(total);
  let minNonZero = Infinity;
  for (let i = 0; i < total; i++) {
    // nnU-Net divides in float64, multiplies by 10, then casts to float16
    const v = roundToHalf((map[i] / max) * valueScale);
    out[i] = v;
    if (v > 0 && v < minNonZero) minNonZero = v;
  }
  for (let i = 0; i < total; i++) if (out[i] === 0) out[i] = minNonZero;
  return out;
}

/** Every non-empty subset of the mirroring axes, in itertools.combinations order (size 1, then 2, ...). */
export function mirrorAxisSubsets(axes: readonly number[]): number[][] {
  const subsets: number[][] = [];
  const choose = (start: number, size: number, acc: number[]) => {
    if (acc.length === size) {
      subsets.push([...acc]);
      return;
    }
    for (let i = start; i < axes.length; i++) choose(i + 1, size, [...acc, axes[i]]);
  };
  for (let size = 1; size <= axes.length; size++) choose(0, size, []);
  return subsets;
}
