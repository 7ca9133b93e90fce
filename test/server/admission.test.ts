// Admission control and the model cache, as units: bounded running + queued places, FIFO slots,
// released places reused; LRU eviction that never releases a model in use.
import assert from 'node:assert/strict';
import { Admission } from '../../server/rpc/admission.js';
import { ModelCache } from '../../server/rpc/model-cache.js';
import { requiredRole, loadTokens } from '../../server/rpc/auth.js';
import type { LoadedModel } from '../../server/inference/model-folder.js';

describe('Predict admission control', () => {
  it('admits running + queued calls, refuses past both, and runs waiters in order', async () => {
    const changes: [number, number][] = [];
    const a = new Admission(1, 1, (r, q) => changes.push([r, q]));
    const first = a.tryAdmit()!;
    const second = a.tryAdmit()!;
    assert.equal(a.tryAdmit(), undefined, 'third call refused');
    await first.run();
    let secondRunning = false;
    const waiting = second.run().then(() => (secondRunning = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(secondRunning, false);
    assert.ok(a.retryAfterMs() >= 1000);
    first.release();
    await waiting;
    assert.equal(a.running, 1);
    const third = a.tryAdmit();
    assert.ok(third, 'a released place is reused');
    third.release();
    second.release();
    second.release(); // idempotent
    assert.equal(a.running, 0);
    assert.equal(a.queued, 0);
    assert.deepEqual(changes.at(-1), [0, 0]);
  });

  it('a waiting ticket released before its turn gives its place back', async () => {
    const a = new Admission(1, 2);
    const running = a.tryAdmit()!;
    await running.run();
    const waiter = a.tryAdmit()!;
    const run = waiter.run();
    waiter.release();
    await assert.rejects(run, /released/);
    running.release();
    assert.equal(a.queued, 0);
  });
});

describe('model cache', () => {
  const fakeModel = (folder: string) => ({ folder, folds: [] }) as unknown as LoadedModel;

  it('loads once for concurrent users and evicts the least recently used idle model', async () => {
    const loads: string[] = [];
    const sizes: number[] = [];
    const cache = new ModelCache(1, (n) => sizes.push(n), async (folder) => (loads.push(folder), fakeModel(folder)));
    const [a1, a2] = await Promise.all([cache.acquire('/m/a', undefined), cache.acquire('/m/a', undefined)]);
    assert.deepEqual(loads, ['/m/a']);
    assert.equal(a1.loaded, true);
    assert.equal(a2.loaded, false);
    const b = await cache.acquire('/m/b', ['0']);
    assert.equal(cache.size, 2, 'a is in use: not evicted');
    a1.release();
    a2.release();
    assert.equal(cache.size, 1);
    assert.ok(cache.has('/m/b', ['0']));
    b.release();
    cache.invalidate('/m/b');
    assert.equal(cache.size, 0);
  });

  it('does not cache a failed load', async () => {
    let fail = true;
    const cache = new ModelCache(2, () => {}, async (folder) => {
      if (fail) throw new Error('broken model');
      return fakeModel(folder);
    });
    await assert.rejects(cache.acquire('/m/x', undefined), /broken/);
    await new Promise((r) => setImmediate(r));
    fail = false;
    const lease = await cache.acquire('/m/x', undefined);
    assert.equal(lease.loaded, true);
    lease.release();
  });
});

describe('auth roles', () => {
  it('keeps health and reflection open, reads for read tokens, the rest for admins', () => {
    assert.equal(requiredRole('/grpc.health.v1.Health/Check'), undefined);
    assert.equal(requiredRole('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo'), undefined);
    assert.equal(requiredRole('/nnunet.v1.InferenceService/Predict'), 'read');
    assert.equal(requiredRole('/nnunet.v1.DatasetService/UploadCase'), 'admin');
    assert.equal(requiredRole('/nnunet.v1.TrainingService/TrainFold'), 'admin');
    assert.equal(requiredRole('/nnunet.v1.SomeFutureService/Anything'), 'admin', 'unknown methods fail closed');
  });

  it('reads tokens from the environment settings', () => {
    const tokens = loadTokens({ adminToken: 'a'.repeat(20), readToken: 'r'.repeat(20) });
    assert.equal(tokens.get('a'.repeat(20)), 'admin');
    assert.equal(tokens.get('r'.repeat(20)), 'read');
    assert.equal(loadTokens({}).size, 0);
  });
});
