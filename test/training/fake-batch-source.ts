// A stand-in for the data pipeline with the same createBatchSource(options) contract: random
// patches where the foreground is a bright box (easy to learn), targets per deep-supervision scale
// by strided (nearest) downsampling. Env switches let tests make the fold process misbehave:
// FAKE_BATCH_SOURCE_ABORT=1 aborts the process (a native crash), FAKE_BATCH_SOURCE_THROW=1 throws.
import { deepSupervisionScales } from '../../server/engine/loss/index.js';
import { tensor, tidy, type Tensor } from '../../server/engine/torch.js';
import type { BatchSource, DataPipelineOptions, TrainingBatch } from '../../server/training/data/types.js';
import { mulberry32 } from '../fixtures/synthetic.js';

export function createBatchSource(o: DataPipelineOptions): BatchSource {
  if (process.env.FAKE_BATCH_SOURCE_ABORT === '1') process.abort();
  const uniform = mulberry32(o.seed ?? 1);
  const patch = o.patchSize.length === 2 ? [1, ...o.patchSize] : o.patchSize;
  const scales = o.stageStrides ? deepSupervisionScales(o.stageStrides) : [o.patchSize.map(() => 1)];
  const voxels = patch[0] * patch[1] * patch[2];
  let produced = 0;
  return {
    async next(): Promise<TrainingBatch> {
      if (process.env.FAKE_BATCH_SOURCE_THROW === '1' && ++produced > 2) throw new Error('fake batch source: disk on fire');
      const B = o.batchSize;
      const image = new Float32Array(B * voxels);
      const label = new Float32Array(B * voxels);
      for (let b = 0; b < B; b++) {
        const lo = patch.map((p) => Math.floor(uniform() * (p / 2)));
        const hi = lo.map((l, i) => l + Math.max(2, Math.floor(patch[i] / 3)));
        for (let x = 0; x < patch[0]; x++) {
          for (let y = 0; y < patch[1]; y++) {
            for (let z = 0; z < patch[2]; z++) {
              const i = b * voxels + (x * patch[1] + y) * patch[2] + z;
              const inside = x >= lo[0] && x < hi[0] && y >= lo[1] && y < hi[1] && z >= lo[2] && z < hi[2];
              label[i] = inside ? 1 : 0;
              image[i] = (inside ? 1.5 : -0.5) + 0.3 * (uniform() - 0.5);
            }
          }
        }
      }
      const shape = [B, 1, ...o.patchSize];
      return tidy(() => {
        const data = tensor(image, shape).to(o.device).keep();
        const full = tensor(label, shape).to(o.device);
        const targets: Tensor[] = scales.map((s) => {
          let t = full;
          s.forEach((f, axis) => {
            const step = Math.round(1 / f);
            if (step > 1) t = t.slice(axis + 2, 0, undefined, step);
          });
          return t.contiguous().keep();
        });
        return { data, targets, keys: Array.from({ length: B }, (_, b) => `fake_${b}`) };
      });
    },
    async close(): Promise<void> {},
  };
}
