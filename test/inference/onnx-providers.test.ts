// onnxruntime execution providers (NNUNET_ONNX_PROVIDERS): the CPU default runs; a provider this
// onnxruntime-node cannot load (CUDA without its libraries, as on CPU-only hosts) fails the load
// with a message that names it and what is offered instead of falling back silently.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../../server/config.js';
import { OnnxRunner } from '../../server/inference/onnx-runner.js';
import { REPO_ROOT } from '../helpers.js';

const DEMO_ONNX = join(REPO_ROOT, 'models', 'demo', 'Dataset004_Hippocampus', 'nnUNetTrainer__nnUNetDemoPlans__3d_fullres', 'fold_0', 'model.onnx');

describe('onnxruntime execution providers', function () {
  this.timeout(60_000);

  it('reads NNUNET_ONNX_PROVIDERS as a priority list, cpu by default, and refuses malformed names', () => {
    assert.deepEqual(loadConfig({}).onnxProviders, ['cpu']);
    assert.deepEqual(loadConfig({ NNUNET_ONNX_PROVIDERS: 'CUDA, cpu' }).onnxProviders, ['cuda', 'cpu']);
    assert.throws(() => loadConfig({ NNUNET_ONNX_PROVIDERS: 'cuda,,cpu' }), /NNUNET_ONNX_PROVIDERS must be a comma-separated list/);
    assert.throws(() => loadConfig({ NNUNET_ONNX_PROVIDERS: 'cu da' }), /NNUNET_ONNX_PROVIDERS/);
    // Threads per run: 0 = onnxruntime's choice; a pod sets its CPU.
    assert.equal(loadConfig({}).onnxThreads, 0);
    assert.equal(loadConfig({ NNUNET_ONNX_THREADS: '4' }).onnxThreads, 4);
    assert.throws(() => loadConfig({ NNUNET_ONNX_THREADS: '-1' }), /NNUNET_ONNX_THREADS must be >= 0/);
  });

  it('runs with a bounded number of threads', async () => {
    const runner = await OnnxRunner.load(DEMO_ONNX, 'demo', { intraOpThreads: 1 });
    const out = await runner.run(new Float32Array(40 * 56 * 40), [1, 1, 40, 56, 40]);
    assert.deepEqual(out.shape, [1, 3, 40, 56, 40]);
    await runner.release();
  });

  it('runs on the CPU provider, in-line and in a thread', async () => {
    for (const thread of [false, true]) {
      const runner = await OnnxRunner.load(DEMO_ONNX, 'demo', { executionProviders: ['cpu'], thread });
      const out = await runner.run(new Float32Array(40 * 56 * 40), [1, 1, 40, 56, 40]);
      assert.deepEqual(out.shape, [1, 3, 40, 56, 40]);
      await runner.release();
    }
  });

  it('a provider that cannot load fails with its name and the providers on offer', async () => {
    let runner: OnnxRunner | undefined;
    try {
      runner = await OnnxRunner.load(DEMO_ONNX, 'demo', { executionProviders: ['cuda'] });
    } catch (err) {
      assert.match((err as Error).message, /^demo: onnxruntime could not create a session with the execution providers \[cuda\] \(NNUNET_ONNX_PROVIDERS\): .+; this onnxruntime-node offers cpu/);
      return;
    }
    // A host with onnxruntime's CUDA libraries and a GPU: the session must then run.
    const out = await runner.run(new Float32Array(40 * 56 * 40), [1, 1, 40, 56, 40]);
    assert.deepEqual(out.shape, [1, 3, 40, 56, 40]);
    await runner.release();
  });
});
