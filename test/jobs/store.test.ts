// The SQLite job store: jobs and events survive reopening the file (WAL), sequences are per job
// and gapless, listing is newest first with filters and a cursor.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteJobStore } from '../../server/jobs/store.js';
import { tempDir } from '../helpers.js';

describe('server/jobs/store', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('nnunet-jobstore-')));
  afterEach(() => t.cleanup());

  it('creates, updates and reads jobs back after reopening the file', () => {
    const file = join(t.dir, 'home', 'jobs.sqlite');
    let store = new SqliteJobStore(file);
    const job = store.create('train_fold', { dataset: '4', fold: '0' });
    assert.equal(job.state, 'QUEUED');
    assert.equal(job.lastSequence, 0);
    assert.ok(job.createTime > 0 && job.startTime === null && job.result === null);
    store.update(job.id, { state: 'RUNNING', startTime: 1234, progress: 0.5, message: 'epoch 1/2' });
    store.update(job.id, { state: 'SUCCEEDED', result: { outputFolder: '/x' }, finishTime: 5678 });
    store.close();
    assert.ok(existsSync(file));
    store = new SqliteJobStore(file);
    const back = store.get(job.id)!;
    assert.deepEqual([back.state, back.progress, back.message, back.startTime, back.finishTime], ['SUCCEEDED', 0.5, 'epoch 1/2', 1234, 5678]);
    assert.deepEqual(back.params, { dataset: '4', fold: '0' });
    assert.deepEqual(back.result, { outputFolder: '/x' });
    assert.equal(store.get('nope'), undefined);
    assert.throws(() => store.update('nope', { progress: 1 }), /no job nope/);
    store.close();
  });

  it('numbers events per job without gaps and replays those after a sequence', () => {
    const store = new SqliteJobStore(':memory:');
    const a = store.create('cpu', {});
    const b = store.create('cpu', {});
    store.appendEvent(a.id, { type: 'state', message: 'queued' });
    store.appendEvent(b.id, { type: 'state', message: 'queued' });
    store.update(a.id, { state: 'RUNNING', progress: 0.25 });
    const epoch = { epoch: 0, numEpochs: 4, trainLoss: -0.1, valLoss: -0.2, pseudoDice: [0.5, 0.6], emaPseudoDice: 0.55, learningRate: 0.01, epochSeconds: 1.5, newBest: true };
    const e2 = store.appendEvent(a.id, { type: 'epoch', message: 'epoch 1/4', epoch });
    assert.deepEqual([e2.sequence, e2.state, e2.progress], [2, 'RUNNING', 0.25]);
    assert.equal(store.get(a.id)!.lastSequence, 2);
    assert.deepEqual(store.eventsAfter(a.id, 0).map((e) => e.sequence), [1, 2]);
    assert.deepEqual(store.eventsAfter(a.id, 1)[0].epoch, epoch);
    assert.deepEqual(store.eventsAfter(b.id, 0).map((e) => [e.sequence, e.type, e.state]), [[1, 'state', 'QUEUED']]);
    assert.throws(() => store.appendEvent('nope', { type: 'log' }), /no job/);
    store.close();
  });

  it('lists newest first, filtered by kind and state, page by page', () => {
    const store = new SqliteJobStore(':memory:');
    const ids = Array.from({ length: 5 }, (_, i) => store.create(i % 2 ? 'train_fold' : 'plan_and_preprocess', { i }).id);
    store.update(ids[4], { state: 'FAILED' });
    const first = store.list({ limit: 2 });
    assert.deepEqual(first.jobs.map((j) => j.id), [ids[4], ids[3]]);
    assert.ok(first.cursor !== undefined);
    const second = store.list({ limit: 2, before: first.cursor });
    assert.deepEqual(second.jobs.map((j) => j.id), [ids[2], ids[1]]);
    const last = store.list({ limit: 2, before: second.cursor });
    assert.deepEqual([last.jobs.map((j) => j.id), last.cursor], [[ids[0]], undefined]);
    assert.deepEqual(store.list({ kind: 'train_fold' }).jobs.map((j) => j.id), [ids[3], ids[1]]);
    assert.deepEqual(store.list({ state: 'FAILED' }).jobs.map((j) => j.id), [ids[4]]);
    assert.deepEqual(store.inStates(['QUEUED']).map((j) => j.id), ids.slice(0, 4));
    store.close();
  });
});
