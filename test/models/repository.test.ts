// The model repository's states, from the files alone (nothing loaded): READY for nnU-Net's real
// model; FAILED with a reason naming the file or fold for a broken plans.json, a missing
// dataset.json, a model.onnx without its sidecar, a fold with only checkpoint_latest; LOADING while
// the model cache creates the sessions, then loaded, then gone after invalidation.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedModel } from '../../server/inference/model-folder.js';
import { checkFold, inspectModel, listModels } from '../../server/models/repository.js';
import { ModelCache } from '../../server/rpc/model-cache.js';
import { tempDir } from '../helpers.js';
import { installFixtureModel } from '../fixtures/nnunet-model.js';

describe('model repository states', () => {
  let tmp: ReturnType<typeof tempDir>;
  let folder: string;
  beforeEach(() => {
    tmp = tempDir();
    folder = installFixtureModel(tmp.dir);
  });
  afterEach(() => tmp.cleanup());
  const only = () => listModels(tmp.dir)[0];

  it("is READY for nnU-Net's model with channels, labels and the checkpoint to convert on first load", () => {
    const r = inspectModel(only());
    assert.equal(r.state, 'READY');
    assert.equal(r.reason, '');
    assert.deepEqual(r.channelNames, ['MRI']);
    assert.deepEqual(r.labels, [
      { name: 'background', values: [0] },
      { name: 'Anterior', values: [1] },
      { name: 'Posterior', values: [2] },
    ]);
    assert.deepEqual(r.folds, [{ fold: '0', network: 'checkpoint_final.pth', problem: '' }]);
  });

  it('uses model.onnx only while its sidecar matches the checkpoint', () => {
    const fold = join(folder, 'fold_0');
    writeFileSync(join(fold, 'model.onnx'), 'onnx');
    assert.match(checkFold(folder, '0').network, /checkpoint_final\.pth/, 'no sidecar: the checkpoint is converted');
    const stat = { size: statSync(join(fold, 'checkpoint_final.pth')).size, mtimeMs: 1_700_000_000_000 };
    utimesSync(join(fold, 'checkpoint_final.pth'), stat.mtimeMs / 1000, stat.mtimeMs / 1000);
    writeFileSync(join(fold, 'model.onnx.json'), JSON.stringify({ source: 'checkpoint_final.pth', sourceSize: stat.size, sourceMtimeMs: stat.mtimeMs, mirrorAxes: [0, 1, 2] }));
    assert.equal(checkFold(folder, '0').network, 'model.onnx');
    utimesSync(join(fold, 'checkpoint_final.pth'), 1_700_000_100, 1_700_000_100);
    assert.equal(checkFold(folder, '0').network, 'checkpoint_final.pth', 'a newer checkpoint wins over a stale ONNX');
    rmSync(join(fold, 'checkpoint_final.pth'));
    assert.equal(checkFold(folder, '0').network, 'model.onnx', 'an ONNX-only fold is usable');
    rmSync(join(fold, 'model.onnx.json'));
    assert.match(checkFold(folder, '0').problem, /model\.onnx has no model\.onnx\.json beside it/);
  });

  it('is FAILED with a reason for each broken part', () => {
    mkdirSync(join(folder, 'fold_1'));
    writeFileSync(join(folder, 'fold_1', 'checkpoint_latest.pth'), 'x');
    let r = inspectModel(only());
    assert.equal(r.state, 'FAILED');
    assert.equal(r.reason, 'fold_1: no checkpoint_final.pth, checkpoint_final.safetensors or model.onnx (only checkpoint_latest.pth: training has not finished)');
    rmSync(join(folder, 'fold_1'), { recursive: true });

    writeFileSync(join(folder, 'plans.json'), '{"configurations": {}}');
    r = inspectModel(only());
    assert.equal(r.state, 'FAILED');
    assert.match(r.reason, /^plans\.json: /);

    renameSync(join(folder, 'dataset.json'), join(folder, 'dataset.json.bak'));
    assert.match(inspectModel(only()).reason, /dataset\.json cannot be read/);
  });

  it('is LOADING while the cache creates its sessions, then loaded, and forgotten after invalidation', async () => {
    let finish!: (m: LoadedModel) => void;
    const cache = new ModelCache(2, () => {}, () => new Promise<LoadedModel>((resolve) => (finish = resolve)));
    assert.equal(cache.folderState(folder), undefined);
    const lease = cache.acquire(folder, ['0']);
    assert.equal(cache.folderState(folder), 'loading');
    assert.equal(inspectModel(only(), { loading: true }).state, 'LOADING');
    finish({ folder, folds: [] } as unknown as LoadedModel);
    (await lease).release();
    assert.equal(cache.folderState(folder), 'loaded');
    cache.invalidate(folder);
    assert.equal(cache.folderState(folder), undefined);
  });
});
