// Specification of createBatchSource on tiny synthetic preprocessed datasets: batch shapes and
// dtypes for 3D, 2D, region and cascade configurations, labels within the dataset's, forced
// foreground, seeded reproducibility, no leaked tensors after close(); prints the throughput.
import assert from 'node:assert/strict';
import { liveTensors, torchAvailable, type Tensor } from '../../../server/engine/torch.js';
import { LabelManager } from '../../../server/dataset/labels.js';
import { createBatchSource, planPipeline, type DataPipelineOptions, type TrainingBatch } from '../../../server/training/data/index.js';
import { tempDir } from '../../helpers.js';
import { writeTinyDataset, type TinyDataset } from './fixtures.js';

const available = torchAvailable();
if (!available) console.warn('training/data batch-source tests skipped: libtorch binding not built (install libtorch-dev, run node scripts/build-native.mjs)');

const deg30: [number, number] = [-Math.PI / 6, Math.PI / 6];
const values = (t: Tensor) => Array.from(t.toFloat32Array());
const dispose = (b: TrainingBatch) => [b.data, ...b.targets].forEach((t) => t.dispose());

function options(ds: TinyDataset, o: Partial<DataPipelineOptions> = {}): DataPipelineOptions {
  return {
    folder: ds.folder,
    caseIds: ds.ids,
    patchSize: [16, 20, 20],
    batchSize: 2,
    stageStrides: [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
    mode: 'train',
    mirrorAxes: [0, 1, 2],
    dummy2d: false,
    rotationRange: deg30,
    labels: ds.labelManager,
    device: 'cpu',
    seed: 1,
    ...o,
  };
}

(available ? describe : describe.skip)('training/data/batch-source (libtorch)', function () {
  let dir: string;
  let cleanup: () => void;
  let plain: TinyDataset;
  before(async () => {
    ({ dir, cleanup } = tempDir('nnunet-batches-'));
    plain = await writeTinyDataset(`${dir}/plain`, { cases: 3, shape: [24, 32, 28] });
  });
  after(() => cleanup());

  it('delivers B × C × patch batches with one float32 target per deep-supervision scale', async () => {
    const live = liveTensors();
    const source = createBatchSource(options(plain));
    try {
      for (let i = 0; i < 4; i++) {
        const b = await source.next();
        assert.deepEqual(b.data.shape, [2, 1, 16, 20, 20]);
        assert.equal(b.data.dtype, 'float32');
        assert.deepEqual(b.targets.map((t) => t.shape), [[2, 1, 16, 20, 20], [2, 1, 8, 10, 10]]);
        assert.ok(b.targets.every((t) => t.dtype === 'float32'));
        assert.ok(values(b.targets[0]).every((v) => v === 0 || v === 1 || v === 2), 'labels ⊆ {0, 1, 2}');
        assert.ok(b.keys.every((k) => plain.ids.includes(k)));
        assert.ok(values(b.data).every(Number.isFinite));
        dispose(b);
      }
    } finally {
      await source.close();
    }
    assert.equal(liveTensors(), live, 'close() frees the prefetched batches');
  });

  it('puts foreground in every forced sample (validation: the chosen voxel is always inside)', async () => {
    const source = createBatchSource(options(plain, { mode: 'val', batchSize: 3, seed: 5 }));
    try {
      for (let i = 0; i < 10; i++) {
        const b = await source.next();
        const perSample = values(b.targets[0]).length / 3;
        const forced = values(b.targets[0]).slice(2 * perSample);
        assert.ok(forced.some((v) => v > 0), `batch ${i}: the forced sample has foreground`);
        dispose(b);
      }
    } finally {
      await source.close();
    }
  });

  it('forces each sample with the oversampling probability in the probabilistic variant', async () => {
    const source = createBatchSource(options(plain, { mode: 'val', batchSize: 4, seed: 9, probabilisticOversampling: true, oversampleForegroundPercent: 1 }));
    try {
      const b = await source.next();
      const t = values(b.targets[0]);
      const n = t.length / 4;
      for (let s = 0; s < 4; s++) assert.ok(t.slice(s * n, (s + 1) * n).some((v) => v > 0), `sample ${s}`);
      dispose(b);
    } finally {
      await source.close();
    }
  });

  it('repeats itself for the same seed, also when cases are read per sample', async () => {
    const run = async (cacheBytes?: number) => {
      const source = createBatchSource(options(plain, { seed: 42, cacheBytes }));
      const out: number[][] = [];
      for (let i = 0; i < 3; i++) {
        const b = await source.next();
        out.push(values(b.data), values(b.targets[1]));
        dispose(b);
      }
      await source.close();
      return out;
    };
    const a = await run();
    const b = await run(0);
    assert.deepEqual(a, b);
  });

  it('samples 2D configurations as single slices', async () => {
    const source = createBatchSource(options(plain, { patchSize: [20, 24], stageStrides: [[1, 1], [2, 2], [2, 2]], mirrorAxes: [0, 1], rotationRange: [-Math.PI, Math.PI] }));
    try {
      const b = await source.next();
      assert.deepEqual(b.data.shape, [2, 1, 20, 24]);
      assert.deepEqual(b.targets.map((t) => t.shape), [[2, 1, 20, 24], [2, 1, 10, 12]]);
      dispose(b);
    } finally {
      await source.close();
    }
  });

  it('delivers region channels with the ignore channel last for region datasets', async () => {
    const ds = await writeTinyDataset(`${dir}/regions`, {
      cases: 2,
      labels: 3,
      labelDict: { background: 0, whole: [1, 2], core: 2, ignore: 3 },
      regionsClassOrder: [1, 2],
    });
    assert.deepEqual(ds.labelManager.regions, [[1, 2], [2]]);
    const source = createBatchSource(options(ds, { batchSize: 3 }));
    try {
      const b = await source.next();
      assert.deepEqual(b.targets.map((t) => t.shape), [[3, 3, 16, 20, 20], [3, 3, 8, 10, 10]]);
      const t = values(b.targets[0]);
      assert.ok(t.every((v) => v === 0 || v === 1));
      dispose(b);
    } finally {
      await source.close();
    }
  });

  it('appends the previous stage as one-hot input channels for the cascade', async () => {
    const ds = await writeTinyDataset(`${dir}/cascade`, { cases: 2, previousStage: true });
    const source = createBatchSource(options(ds, { previousStageFolder: ds.previousStageFolder, mode: 'val' }));
    try {
      const b = await source.next();
      assert.deepEqual(b.data.shape, [2, 3, 16, 20, 20]);
      // Without augmentation the one-hot of label 1 equals the target's label 1.
      const data = values(b.data), target = values(b.targets[0]);
      const n = 16 * 20 * 20;
      for (let s = 0; s < 2; s++) {
        for (let i = 0; i < n; i++) {
          assert.equal(data[(s * 3 + 1) * n + i], target[s * n + i] === 1 ? 1 : 0);
          assert.equal(data[(s * 3 + 2) * n + i], 0);
        }
      }
      dispose(b);
    } finally {
      await source.close();
    }
  });

  it('reports its throughput (printed, not asserted)', async function () {
    const ds = await writeTinyDataset(`${dir}/speed`, { cases: 2, shape: [48, 96, 96], channels: 1 });
    const o = options(ds, { patchSize: [40, 80, 80], batchSize: 2, stageStrides: [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]] });
    const source = createBatchSource(o);
    try {
      dispose(await source.next());
      const n = 4;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) dispose(await source.next());
      const s = (performance.now() - t0) / 1000;
      const loaded = planPipeline(o).loaded3d.join('×');
      console.log(`      throughput: ${(n / s).toFixed(2)} batches/s (B=2, patch 40×80×80 loaded as ${loaded}, device cpu)`);
    } finally {
      await source.close();
    }
  });
});

describe('training/data/batch-source options', () => {
  it('refuses an empty case list and dummy-2D for 2D patches', () => {
    const labels = new LabelManager({ background: 0, a: 1 });
    const base = { folder: '', patchSize: [8, 8], batchSize: 1, stageStrides: null, mode: 'train' as const, mirrorAxes: [0, 1], dummy2d: false, rotationRange: deg30, labels, device: 'cpu' as const };
    assert.throws(() => createBatchSource({ ...base, caseIds: [] }), /at least one case/);
    assert.throws(() => createBatchSource({ ...base, caseIds: ['a'], dummy2d: true }), /dummy-2D/);
  });
});
