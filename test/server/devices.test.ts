// Accelerators and the training concurrency they give: the CUDA probe answers 0 with a reason on a
// host without a driver (this CI machine), and one training runs per CUDA device, else
// NNUNET_CPU_TRAININGS on CPU, with NNUNET_MAX_TRAINING_JOBS overriding both.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { loadConfig, trainingConcurrency } from '../../server/config.js';
import { onnxExecutionProviders, probeCudaDevices } from '../../server/devices.js';

describe('accelerators, training concurrency and the operation settings', () => {
  it('runs one training per CUDA device, NNUNET_CPU_TRAININGS (default 1) without one, NNUNET_MAX_TRAINING_JOBS over both', () => {
    assert.equal(trainingConcurrency({}, 0), 1);
    assert.equal(trainingConcurrency({ NNUNET_CPU_TRAININGS: '3' }, 0), 3);
    assert.equal(trainingConcurrency({ NNUNET_CPU_TRAININGS: '3' }, 4), 4, 'the CPU setting does not apply on a GPU host');
    assert.equal(trainingConcurrency({}, 2), 2);
    assert.equal(trainingConcurrency({ NNUNET_MAX_TRAINING_JOBS: '1' }, 4), 1);
    assert.throws(() => trainingConcurrency({ NNUNET_CPU_TRAININGS: '0' }, 0), /NNUNET_CPU_TRAININGS must be at least 1/);
    assert.throws(() => trainingConcurrency({ NNUNET_CPU_TRAININGS: 'two' }, 0), /NNUNET_CPU_TRAININGS must be an integer/);
  });

  (existsSync('/proc/driver/nvidia') || existsSync('/dev/nvidiactl') ? it.skip : it)('finds no CUDA device on a host without an NVIDIA driver, and says why', () => {
    assert.deepEqual(probeCudaDevices({}), { count: 0, note: 'no NVIDIA driver on this host' });
  });

  it("lists onnxruntime-node's execution providers, cpu among the bundled ones", async () => {
    const providers = await onnxExecutionProviders();
    assert.ok(providers.some((p) => p.name === 'cpu' && p.bundled), JSON.stringify(providers));
  });

  it('reads the worker pool and health port settings, refusing values that cannot work', () => {
    const config = loadConfig({ NNUNET_PREPROCESS_WORKERS: '0', NNUNET_HEALTH_PORT: '8081' });
    assert.deepEqual([config.preprocessWorkers, config.healthPort], [0, 8081]);
    assert.equal(loadConfig({}).healthPort, -1, 'off unless asked for');
    assert.throws(() => loadConfig({ NNUNET_PREPROCESS_WORKERS: '-1' }), /NNUNET_PREPROCESS_WORKERS must be >= 0/);
    assert.throws(() => loadConfig({ NNUNET_PORT: '9000', NNUNET_HEALTH_PORT: '9000' }), /NNUNET_HEALTH_PORT must differ from NNUNET_PORT/);
    assert.throws(() => loadConfig({ NNUNET_HEALTH_PORT: '70000' }), /healthPort must be in 0\.\.65535/);
  });
});
