// Preprocessing and export in the worker pool (case-work.ts), with the onnxruntime sessions in
// threads of their own (onnx-thread.ts), as the server runs them, give exactly the in-line results;
// the pool moves the logits to the worker instead of copying them and keeps error classes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatasetError } from '../../server/dataset/errors.js';
import { CaseWorkerPool } from '../../server/inference/case-work.js';
import { caseModelSpec, predictCase } from '../../server/inference/predictor.js';
import { loadModelFolder, releaseModel, type LoadedModel } from '../../server/inference/model-folder.js';
import { ImageFormatError } from '../../server/io/errors.js';
import { HIPPOCAMPUS, tempDir } from '../helpers.js';
import { installFixtureModel } from '../fixtures/nnunet-model.js';

const IMAGE = join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_001_0000.nii.gz');

describe('prediction stages in the worker pool', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let model: LoadedModel;
  let threaded: LoadedModel;
  let pool: CaseWorkerPool;

  before(async () => {
    tmp = tempDir();
    const folder = installFixtureModel(tmp.dir);
    model = await loadModelFolder(folder, { folds: ['0'] });
    threaded = await loadModelFolder(folder, { folds: ['0'], thread: true });
    pool = new CaseWorkerPool(1);
  });
  after(async () => {
    await pool?.close();
    if (model) await releaseModel(model);
    if (threaded) await releaseModel(threaded);
    tmp?.cleanup();
  });

  it('predicts the same segmentation, probabilities and encoded files as in-line (with test-time mirroring)', async () => {
    const options = { mirroring: true, saveProbabilities: true, encode: { segmentation: true, probabilities: true } };
    const inline = await predictCase(model, [IMAGE], options);
    const pooled = await predictCase(threaded, [IMAGE], { ...options, work: pool });
    assert.deepEqual(pooled.shape, inline.shape);
    assert.deepEqual(pooled.reference, inline.reference);
    assert.deepEqual(pooled.properties, inline.properties);
    assert.ok(Buffer.from(pooled.segmentation.buffer, pooled.segmentation.byteOffset, pooled.segmentation.byteLength).equals(Buffer.from(inline.segmentation.buffer, inline.segmentation.byteOffset, inline.segmentation.byteLength)));
    assert.ok(inline.probabilities && pooled.probabilities);
    assert.ok(Buffer.from(pooled.probabilities.buffer).equals(Buffer.from(inline.probabilities.buffer)));
    assert.ok(inline.encoded.segmentation && inline.encoded.probabilities);
    assert.ok(Buffer.from(pooled.encoded.segmentation!).equals(Buffer.from(inline.encoded.segmentation)), 'the .nii.gz bytes are identical');
    assert.ok(Buffer.from(pooled.encoded.probabilities!).equals(Buffer.from(inline.encoded.probabilities)), 'the .npz bytes are identical');
    assert.ok(new Set(pooled.segmentation).size > 1, 'the case has foreground');
  });

  it('moves the logits to the worker (the caller\'s buffer is detached) instead of copying them', async () => {
    const spec = caseModelSpec(model);
    const pre = await pool.preprocess({ spec, files: [IMAGE] });
    assert.ok(pre.data instanceof Float32Array && pre.data.length === pre.channels * pre.shape[0] * pre.shape[1] * pre.shape[2]);
    const K = model.labels.numSegmentationHeads;
    const logits = { data: new Float32Array(K * pre.shape[0] * pre.shape[1] * pre.shape[2]), channels: K, shape: pre.shape };
    for (let i = 0; i < logits.data.length / K; i++) logits.data[i] = 1; // background wins everywhere
    const done = await pool.export({ spec, logits, properties: pre.properties, reference: pre.reference, saveProbabilities: false });
    assert.equal(logits.data.byteLength, 0, 'transferred, not copied');
    assert.deepEqual(done.shape, pre.reference.shape);
    assert.ok(done.segmentation.every((v) => v === 0));
  });

  it('rethrows a worker\'s error with its class and message, so the server maps it to the same status', async () => {
    const spec = caseModelSpec(model);
    const twoChannels = pool.preprocess({ spec, files: [IMAGE, IMAGE] });
    await assert.rejects(twoChannels, (err: Error) => err instanceof DatasetError && /2 channel\(s\) but the model expects 1/.test(err.message));
    const missing = join(tmp.dir, 'missing_0000.nii.gz');
    await assert.rejects(pool.preprocess({ spec, files: [missing] }), (err: Error) => !(err instanceof ImageFormatError) && /ENOENT/.test(err.message));
    const notNifti = join(tmp.dir, 'plans.json');
    await assert.rejects(pool.preprocess({ spec, files: [notNifti] }), (err: Error) => err instanceof DatasetError && /only NIfTI/.test(err.message));
  });
});
