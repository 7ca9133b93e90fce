// Sliding-window prediction of one preprocessed case (REFERENCE §7.4–7.5): pad to the patch,
// tiles at nnU-Net's positions, test-time mirroring averaged in float32, Gaussian-weighted
// accumulation and the fold mean in float16 exactly as nnU-Net's half-precision accumulators do
// (so probabilities agree to ~1e-4, not just approximately). The mirrored variants of a tile run
// as one batch, which is where onnxruntime gains its throughput. Passes over the whole volume run
// in slices with a yield to the event loop between them, so a server answers other calls meanwhile.
import { roundToHalfValue } from '../io/npy.js';
import type { OnnxRunner } from './onnx-runner.js';
import { gaussianImportanceMap, mirrorAxisSubsets, paddingToSize, slidingWindowSteps } from './sliding-window.js';
import { accumulateTile, cropVolume, flipVolume, padVolume, type Shape3 } from './volume-ops.js';

/** Values handled between two yields to the event loop (a few milliseconds of work). */
const SLICE = 1 << 20;

/** Runs `fn(from, to)` over [0, n) in slices, yielding to the event loop between them; same order as one loop. */
async function inSlices(n: number, fn: (from: number, to: number) => void): Promise<void> {
  for (let from = 0; from < n; from += SLICE) {
    if (from > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    fn(from, Math.min(n, from + SLICE));
  }
}

export interface SlidingWindowOptions {
  /** The configuration's patch size (2 entries for 2D configurations, 3 for 3D). */
  patchSize: number[];
  /** Tile overlap: step = patch · stepSize (nnU-Net default 0.5). */
  stepSize?: number;
  /** Spatial axes of the patch that mirroring may flip (checkpoint's inference_allowed_mirroring_axes); empty = no TTA. */
  mirrorAxes?: number[];
  /** Called after each tile of each fold. */
  onProgress?: (done: number, total: number) => void;
}

export interface Logits {
  /** float32 storage holding float16-exact values, (K, x, y, z). */
  data: Float32Array;
  channels: number;
  shape: Shape3;
}

// nnU-Net caches compute_gaussian (lru_cache) as well: building the map costs ~20 ms for a small
// patch, which was paid again for every fold of every case. A handful of entries covers the patch
// sizes of the models a server holds at once; the maps are only read, never written.
const GAUSSIAN_CACHE_SIZE = 4;
const gaussianCache = new Map<string, Float32Array>();

function cachedGaussian(patchSize: readonly number[]): Float32Array {
  const key = patchSize.join(',');
  let map = gaussianCache.get(key);
  if (!map) {
    map = gaussianImportanceMap(patchSize);
    if (gaussianCache.size >= GAUSSIAN_CACHE_SIZE) gaussianCache.delete(gaussianCache.keys().next().value as string);
    gaussianCache.set(key, map);
  }
  return map;
}

/** Averages the network output over the mirrored variants of one tile (float32 sums, as torch). */
async function predictTileWithMirroring(runner: OnnxRunner, tile: Float32Array, channels: number, patch3: Shape3, netShape: number[], subsets: number[][]): Promise<{ data: Float32Array; classes: number }> {
  const variants = [[], ...subsets];
  const per = tile.length;
  const batch = new Float32Array(per * variants.length);
  variants.forEach((axes, i) => batch.set(axes.length === 0 ? tile : flipVolume(tile, channels, patch3, axes), i * per));
  const { data, shape } = await runner.run(batch, [variants.length, channels, ...netShape]);
  const classes = shape[1];
  const outPer = data.length / variants.length;
  const sum = data.slice(0, outPer);
  for (let i = 1; i < variants.length; i++) {
    const back = flipVolume(data.subarray(i * outPer, (i + 1) * outPer), classes, patch3, variants[i]);
    for (let j = 0; j < outPer; j++) sum[j] = Math.fround(sum[j] + back[j]);
  }
  if (variants.length > 1) for (let j = 0; j < outPer; j++) sum[j] = Math.fround(sum[j] / variants.length);
  return { data: sum, classes };
}

/** Sliding-window logits of one network over a (c, x, y, z) case. */
export async function slidingWindowLogits(
  runner: OnnxRunner,
  data: Float32Array,
  channels: number,
  shape: Shape3,
  o: SlidingWindowOptions,
  progress?: { done: number; total: number },
): Promise<Logits> {
  const is2d = o.patchSize.length === 2;
  const patch3: Shape3 = is2d ? [1, o.patchSize[0], o.patchSize[1]] : (o.patchSize as Shape3);
  const pad = paddingToSize(shape, patch3);
  const padded = padVolume(data, channels, shape, pad);
  const steps = is2d
    ? [Array.from({ length: padded.shape[0] }, (_, i) => i), ...slidingWindowSteps(padded.shape.slice(1), o.patchSize, o.stepSize ?? 0.5)]
    : slidingWindowSteps(padded.shape, o.patchSize, o.stepSize ?? 0.5);
  const gaussian = cachedGaussian(is2d ? o.patchSize : patch3);
  // 2D mirroring axes (0, 1) refer to the slice's axes, which are axes 1 and 2 of the 3D tile
  const subsets = mirrorAxisSubsets((o.mirrorAxes ?? []).map((a) => (is2d ? a + 1 : a)));
  const voxels = padded.shape[0] * padded.shape[1] * padded.shape[2];
  let acc: Float32Array | undefined;
  let classes = 0;
  const weights = new Float32Array(voxels);
  const netShape = is2d ? o.patchSize : patch3;
  for (const x of steps[0]) {
    for (const y of steps[1]) {
      for (const z of steps[2]) {
        const tile = cropVolume(padded.data, channels, padded.shape, [x, y, z], patch3);
        const pred = await predictTileWithMirroring(runner, tile, channels, patch3, netShape, subsets);
        if (!acc) {
          classes = pred.classes;
          acc = new Float32Array(classes * voxels);
        }
        accumulateTile(acc, weights, classes, padded.shape, pred.data, gaussian, patch3, [x, y, z], roundToHalfValue);
        if (progress) o.onProgress?.(++progress.done, progress.total);
      }
    }
  }
  if (!acc) throw new Error('sliding window produced no tiles');
  const sums = acc;
  for (let c = 0; c < classes; c++) {
    const off = c * voxels;
    await inSlices(voxels, (from, to) => {
      for (let i = from; i < to; i++) sums[off + i] = roundToHalfValue(sums[off + i] / weights[i]);
    });
  }
  await inSlices(acc.length, (from, to) => {
    for (let i = from; i < to; i++) {
      if (!Number.isFinite(sums[i])) throw new Error('sliding-window logits overflowed float16 (inf); the network output is out of range');
    }
  });
  const start = pad.map((p) => p[0]);
  return { data: cropVolume(acc, classes, padded.shape, start, shape), channels: classes, shape };
}

/** Number of tiles per fold, for progress reporting. */
export function tileCount(shape: Shape3, patchSize: number[], stepSize = 0.5): number {
  const is2d = patchSize.length === 2;
  const patch3: Shape3 = is2d ? [1, patchSize[0], patchSize[1]] : (patchSize as Shape3);
  const padded = shape.map((s, d) => Math.max(s, patch3[d]));
  const steps = is2d ? [[...Array(padded[0]).keys()], ...slidingWindowSteps(padded.slice(1), patchSize, stepSize)] : slidingWindowSteps(padded, patchSize, stepSize);
  return steps.reduce((n, s) => n * s.length, 1);
}

/** Mean of the folds' logits, accumulated in float16 like nnU-Net (`prediction += ...; prediction /= n`). */
export async function ensembleFoldLogits(
  runners: OnnxRunner[],
  data: Float32Array,
  channels: number,
  shape: Shape3,
  o: SlidingWindowOptions,
): Promise<Logits> {
  if (runners.length === 0) throw new Error('no folds to predict with');
  const progress = { done: 0, total: tileCount(shape, o.patchSize, o.stepSize) * runners.length };
  let total: Logits | undefined;
  for (const runner of runners) {
    const logits = await slidingWindowLogits(runner, data, channels, shape, o, progress);
    if (!total) total = logits;
    else {
      const sum = total.data;
      await inSlices(sum.length, (from, to) => {
        for (let i = from; i < to; i++) sum[i] = roundToHalfValue(sum[i] + logits.data[i]);
      });
    }
  }
  const result = total as Logits;
  if (runners.length > 1) {
    await inSlices(result.data.length, (from, to) => {
      for (let i = from; i < to; i++) result.data[i] = roundToHalfValue(result.data[i] / runners.length);
    });
  }
  return result;
}
