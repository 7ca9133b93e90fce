// createBatchSource: nnU-Net v2's nnUNetDataLoader + augmenter as one prefetching stream of batches
// on the training device (REFERENCE §5.2–5.4). Departs from nnU-Net's worker processes on purpose:
// files are read asynchronously (libuv's thread pool), augmentation runs as libtorch ops on the
// training device in this thread, and `prefetch` batches are prepared ahead of the trainer.
import { randomInt } from 'node:crypto';
import { manualSeed, stack, tensor, tidy, type Tensor } from '../../engine/torch.js';
import { trainingSample, validationSample, type SampleConfig } from './augment.js';
import { CaseStore } from './case-store.js';
import {
  annotatedClassesKey,
  asPseudo3d,
  chooseBbox,
  deepSupervisionScales,
  initialPatchSize,
  isForcedForeground,
  scaledShape,
} from './patch-geometry.js';
import { DecisionRng } from './rng.js';
import type { BatchSource, DataPipelineOptions, TrainingBatch } from './types.js';

export const DEFAULT_OVERSAMPLE_FOREGROUND_PERCENT = 0.33;
export const DEFAULT_PREFETCH = 2;

/** What the pipeline derives from the options once: geometry, label semantics, targets. */
export interface PipelinePlan {
  /** Final patch as pseudo-3D (2D: (1, h, w)). */
  patch3d: number[];
  /** Loaded patch as pseudo-3D: enlarged for training, the final patch for validation. */
  loaded3d: number[];
  sample: SampleConfig;
  ignoreKey: string | null;
}

export function planPipeline(o: DataPipelineOptions): PipelinePlan {
  const nd = o.patchSize.length;
  if (nd !== 2 && nd !== 3) throw new RangeError(`patchSize must have 2 or 3 entries, got [${o.patchSize.join(', ')}]`);
  if (nd === 2 && o.dummy2d) throw new RangeError('dummy-2D augmentation applies to 3D patches only');
  if (o.stageStrides?.some((s) => s.length !== nd)) throw new RangeError(`stageStrides need ${nd} entries per stage`);
  const labels = o.labels;
  const patch3d = asPseudo3d(o.patchSize);
  const loaded3d = o.mode === 'train' ? asPseudo3d(initialPatchSize(o.patchSize, o.rotationRange, o.dummy2d)) : patch3d;
  const maxLabel = Math.max(0, ...labels.allLabels, ...(labels.ignoreLabel !== undefined ? [labels.ignoreLabel] : []));
  const regions = labels.hasRegions
    ? [...labels.regions, ...(labels.ignoreLabel !== undefined ? [[labels.ignoreLabel]] : [])]
    : null;
  const scales = o.stageStrides === null ? [o.patchSize.map(() => 1)] : deepSupervisionScales(o.stageStrides);
  return {
    patch3d,
    loaded3d,
    ignoreKey: labels.hasIgnoreLabel ? annotatedClassesKey(labels.allLabels) : null,
    sample: {
      patchSize: [...o.patchSize],
      dummy2d: o.dummy2d,
      rotationRange: o.rotationRange,
      mirrorAxes: o.mirrorAxes,
      maskedChannels: o.maskedChannels ?? [],
      maxLabel,
      cascadeLabels: o.previousStageFolder !== undefined ? labels.foregroundLabels : null,
      regions,
      targetShapes: scales.map((s) => scaledShape(o.patchSize, s)),
    },
  };
}

/** Prepares batches one after another, `depth` ahead; a failed batch rejects only its own next(). */
class PrefetchingBatchSource implements BatchSource {
  readonly #produce: () => Promise<TrainingBatch>;
  readonly #queue: Promise<TrainingBatch>[] = [];
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(produce: () => Promise<TrainingBatch>, depth: number) {
    this.#produce = produce;
    for (let i = 0; i < Math.max(1, depth); i++) this.#enqueue();
  }

  #enqueue(): void {
    // Sequential production keeps the random stream, and so a seeded run, reproducible.
    const p = this.#tail.then(() => this.#produce());
    this.#tail = p.catch(() => undefined);
    p.catch(() => undefined); // rejections surface in next(), not as unhandled
    this.#queue.push(p);
  }

  next(): Promise<TrainingBatch> {
    if (this.#closed) return Promise.reject(new Error('batch source is closed'));
    const p = this.#queue.shift() as Promise<TrainingBatch>;
    this.#enqueue();
    return p;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#queue.splice(0)) {
      try {
        const b = await p;
        b.data.dispose();
        for (const t of b.targets) t.dispose();
      } catch {
        // a batch that failed holds no tensors
      }
    }
    await this.#tail;
  }
}

export function createBatchSource(options: DataPipelineOptions): BatchSource {
  if (options.caseIds.length === 0) throw new RangeError('the data pipeline needs at least one case');
  if (!(options.batchSize >= 1)) throw new RangeError(`batchSize must be ≥ 1, got ${options.batchSize}`);
  const plan = planPipeline(options);
  const seed = options.seed ?? randomInt(2 ** 31);
  const rng = new DecisionRng(seed);
  // libtorch's generator is process-wide; only training draws from it (noise), so only it seeds it.
  if (options.mode === 'train' && options.seed !== undefined) manualSeed(options.seed);
  const store = new CaseStore(options.folder, { cacheBytes: options.cacheBytes, previousStageFolder: options.previousStageFolder });
  const oversample = options.oversampleForegroundPercent ?? DEFAULT_OVERSAMPLE_FOREGROUND_PERCENT;
  const { patch3d, loaded3d, sample, ignoreKey } = plan;
  const is2d = options.patchSize.length === 2;

  const produce = async (): Promise<TrainingBatch> => {
    const keys: string[] = [];
    const boxes: number[][] = [];
    for (let j = 0; j < options.batchSize; j++) {
      const key = options.caseIds[rng.index(options.caseIds.length)];
      const info = await store.info(key);
      const forced = options.probabilisticOversampling ? rng.chance(oversample) : isForcedForeground(j, options.batchSize, oversample);
      boxes.push(chooseBbox(info.shape, loaded3d, patch3d, forced, info.classLocations, ignoreKey, rng).start);
      keys.push(key);
    }
    const crops = await Promise.all(keys.map((k, j) => store.crop(k, boxes[j], loaded3d)));
    const infos = await Promise.all(keys.map((k) => store.info(k)));
    return tidy(() => {
      const images: Tensor[] = [];
      const targets: Tensor[][] = sample.targetShapes.map(() => []);
      crops.forEach((crop, j) => {
        const spatial = is2d ? loaded3d.slice(1) : loaded3d;
        const img = tensor(crop.data, [infos[j].channels, ...spatial]).to(options.device);
        const seg = tensor(crop.seg, [infos[j].segChannels, ...spatial]).to(options.device);
        const out = options.mode === 'train' ? trainingSample(img, seg, sample, rng) : validationSample(img, seg, sample);
        images.push(out.img);
        out.targets.forEach((t, s) => targets[s].push(t));
      });
      const batch = { data: stack(images, 0).keep(), targets: targets.map((ts) => stack(ts, 0).keep()), keys };
      return batch;
    });
  };
  return new PrefetchingBatchSource(produce, options.prefetch ?? DEFAULT_PREFETCH);
}
