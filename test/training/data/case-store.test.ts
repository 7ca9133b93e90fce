// Specification of the case store: crops equal direct indexing into the preprocessed arrays, with
// image padding 0 and segmentation padding −1, whether the case is cached whole or read per
// sample as a slab; the cascade's previous-stage segmentation is the second seg channel.
import assert from 'node:assert/strict';
import { readNpy } from '../../../server/io/npy.js';
import { CaseStore, cropWithPadding } from '../../../server/training/data/case-store.js';
import { tempDir } from '../../helpers.js';
import { writeTinyDataset } from './fixtures.js';

/** The crop by definition: every output voxel looks its source up, or takes the pad value. */
function referenceCrop(src: ArrayLike<number>, channels: number, shape: number[], start: number[], size: number[], pad: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < channels; c++) {
    for (let x = 0; x < size[0]; x++) {
      for (let y = 0; y < size[1]; y++) {
        for (let z = 0; z < size[2]; z++) {
          const [i, j, k] = [x + start[0], y + start[1], z + start[2]];
          const inside = i >= 0 && j >= 0 && k >= 0 && i < shape[0] && j < shape[1] && k < shape[2];
          out.push(inside ? src[((c * shape[0] + i) * shape[1] + j) * shape[2] + k] : pad);
        }
      }
    }
  }
  return out;
}

describe('training/data/case-store', () => {
  const boxes: [number[], number[]][] = [
    [[-3, 5, 20], [10, 10, 12]], // beyond lower x and upper z
    [[4, 4, 4], [8, 8, 8]], // inside
    [[20, -6, -2], [9, 40, 31]], // larger than the image in y and z
    [[30, 0, 0], [4, 4, 4]], // entirely outside
  ];

  it('crops with image padding 0 and segmentation padding −1, cached or read per sample', async () => {
    const { dir, cleanup } = tempDir('nnunet-casestore-');
    try {
      const ds = await writeTinyDataset(dir, { cases: 1, channels: 2 });
      const id = ds.ids[0];
      const data = await readNpy(`${ds.folder}/${id}.npy`);
      const seg = await readNpy(`${ds.folder}/${id}_seg.npy`);
      const shape = data.shape.slice(1);
      for (const cacheBytes of [undefined, 0]) {
        const store = new CaseStore(ds.folder, { cacheBytes });
        const info = await store.info(id);
        assert.deepEqual(info.shape, shape);
        assert.equal(info.channels, 2);
        assert.equal(info.segChannels, 1);
        assert.ok(Object.keys(info.classLocations ?? {}).length > 0);
        for (const [start, size] of boxes) {
          const crop = await store.crop(id, start, size);
          assert.deepEqual(Array.from(crop.data), referenceCrop(data.data, 2, shape, start, size, 0), `data ${start}`);
          assert.deepEqual(Array.from(crop.seg), referenceCrop(seg.data, 1, shape, start, size, -1), `seg ${start}`);
        }
        assert.equal(store.cachedBytes > 0, cacheBytes === undefined);
      }
    } finally {
      cleanup();
    }
  });

  it('appends the previous-stage segmentation as a second seg channel, padded with −1', async () => {
    const { dir, cleanup } = tempDir('nnunet-casestore-');
    try {
      const ds = await writeTinyDataset(dir, { cases: 1, previousStage: true });
      const store = new CaseStore(ds.folder, { previousStageFolder: ds.previousStageFolder });
      const id = ds.ids[0];
      assert.equal((await store.info(id)).segChannels, 2);
      const seg = await readNpy(`${ds.folder}/${id}_seg.npy`);
      const crop = await store.crop(id, [-2, 0, 0], [6, 32, 28]);
      const n = 6 * 32 * 28;
      const target = crop.seg.subarray(0, n);
      const prev = crop.seg.subarray(n);
      assert.deepEqual(Array.from(target), referenceCrop(seg.data, 1, ds.shape, [-2, 0, 0], [6, 32, 28], -1));
      const prevVolume = Int16Array.from(seg.data as Int16Array, (v) => (v === 1 ? 1 : 0));
      assert.deepEqual(Array.from(prev), referenceCrop(prevVolume, 1, ds.shape, [-2, 0, 0], [6, 32, 28], -1));
    } finally {
      cleanup();
    }
  });

  it('names the missing file of an incomplete case', async () => {
    const store = new CaseStore('/nonexistent-folder');
    await assert.rejects(store.info('nope'), /nope\.npy is missing/);
  });

  it('copies rows of slabs with an axis-0 offset', () => {
    const src = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i); // rows 5..6 of a (1, 8, 3, 2) array, viewed as 2 rows
    const out = cropWithPadding(src, 1, [8, 3, 2], [5, 0, 0], [3, 3, 2], -7, 5, 2);
    assert.deepEqual(Array.from(out), [...Array.from(src), -7, -7, -7, -7, -7, -7]);
  });
});
