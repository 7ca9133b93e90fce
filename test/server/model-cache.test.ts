// The model cache reloads a model whose folder changed on disk (another replica reinstalled it over
// the shared volume, or a fold was retrained in place), and does not reload for the model.onnx its
// own first load writes.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedModel } from '../../server/inference/model-folder.js';
import { ModelCache } from '../../server/rpc/model-cache.js';
import { tempDir } from '../helpers.js';

function makeFolder(root: string, name: string, content: string): string {
  const folder = join(root, name);
  mkdirSync(join(folder, 'fold_0'), { recursive: true });
  writeFileSync(join(folder, 'fold_0', 'checkpoint_final.pth'), content);
  return folder;
}

describe('ModelCache and changes on disk', () => {
  it('reloads a model folder replaced on disk, keeps serving the old one to its current user, and ignores its own first-load writes', async () => {
    const t = tempDir();
    try {
      const folder = makeFolder(t.dir, 'model', 'v1');
      const loads: string[] = [];
      const cache = new ModelCache(4, () => {}, async (f) => {
        // A first load converts the checkpoint and writes model.onnx next to it.
        writeFileSync(join(f, 'fold_0', 'model.onnx'), 'converted');
        loads.push(f);
        return { id: loads.length } as unknown as LoadedModel;
      });
      const a = await cache.acquire(folder, ['0']);
      assert.equal(a.loaded, true);
      const b = await cache.acquire(folder, ['0']);
      assert.equal(b.loaded, false, 'the write of its own first load does not count as a change');
      b.release();

      // Another server installs a new version: a new folder renamed over the old one.
      const staged = makeFolder(t.dir, '.model.staged', 'v2');
      rmSync(folder, { recursive: true });
      renameSync(staged, folder);
      const c = await cache.acquire(folder, ['0']);
      assert.equal(c.loaded, true, 'a replaced folder is loaded again');
      assert.notEqual(c.model, a.model);
      assert.equal(loads.length, 2);
      a.release();
      c.release();

      // A fold retrained in place (a new checkpoint renamed into fold_0) also counts.
      await new Promise((r) => setTimeout(r, 20));
      writeFileSync(join(folder, 'fold_0', '.checkpoint_final.pth.tmp'), 'v3');
      renameSync(join(folder, 'fold_0', '.checkpoint_final.pth.tmp'), join(folder, 'fold_0', 'checkpoint_final.pth'));
      const d = await cache.acquire(folder, ['0']);
      assert.equal(d.loaded, true);
      d.release();
      assert.equal(cache.size, 1);
      await cache.close();
    } finally {
      t.cleanup();
    }
  });
});
