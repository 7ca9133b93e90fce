// The JobStore contract, run against every implementation (store.test.ts: SQLite;
// postgres-store.test.ts: PostgreSQL): jobs and events survive reopening, sequences are per job and
// gapless, listing is newest first with filters and a cursor, claiming takes the oldest queued job
// once, conditional updates are compare-and-set, leases expire and are taken over, and the named
// lock excludes.
import assert from 'node:assert/strict';
import type { JobStore } from '../../server/jobs/store.js';

export interface StoreFactory {
  /** A fresh, empty place for a store (a file path, a database URL). */
  location(): Promise<string>;
  open(location: string): Promise<JobStore>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function jobStoreContract(f: StoreFactory): void {
  const opened: JobStore[] = [];
  const open = async (location?: string) => {
    const store = await f.open(location ?? (await f.location()));
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  it('creates, updates and reads jobs back after reopening', async () => {
    const where = await f.location();
    let store = await open(where);
    const job = await store.create('train_fold', { dataset: '4', fold: '0' });
    assert.equal(job.state, 'QUEUED');
    assert.equal(job.lastSequence, 0);
    assert.ok(job.createTime > 0 && job.startTime === null && job.result === null && job.owner === null);
    await store.update(job.id, { state: 'RUNNING', startTime: 1234, progress: 0.5, message: 'epoch 1/2' });
    await store.update(job.id, { state: 'SUCCEEDED', result: { outputFolder: '/x' }, finishTime: 5678 });
    await store.close();
    store = await open(where);
    const back = (await store.get(job.id))!;
    assert.deepEqual([back.state, back.progress, back.message, back.startTime, back.finishTime], ['SUCCEEDED', 0.5, 'epoch 1/2', 1234, 5678]);
    assert.deepEqual(back.params, { dataset: '4', fold: '0' });
    assert.deepEqual(back.result, { outputFolder: '/x' });
    assert.equal(await store.get('nope'), undefined);
    await assert.rejects(store.update('nope', { progress: 1 }), /no job nope/);
  });

  it('numbers events per job without gaps and replays those after a sequence', async () => {
    const store = await open();
    const a = await store.create('cpu', {});
    const b = await store.create('cpu', {});
    await store.appendEvent(a.id, { type: 'state', message: 'queued' });
    await store.appendEvent(b.id, { type: 'state', message: 'queued' });
    await store.update(a.id, { state: 'RUNNING', progress: 0.25 });
    const epoch = { epoch: 0, numEpochs: 4, trainLoss: -0.1, valLoss: -0.2, pseudoDice: [0.5, 0.6], emaPseudoDice: 0.55, learningRate: 0.01, epochSeconds: 1.5, newBest: true };
    const e2 = await store.appendEvent(a.id, { type: 'epoch', message: 'epoch 1/4', epoch });
    assert.deepEqual([e2.sequence, e2.state, e2.progress], [2, 'RUNNING', 0.25]);
    assert.equal((await store.get(a.id))!.lastSequence, 2);
    assert.deepEqual((await store.eventsAfter(a.id, 0)).map((e) => e.sequence), [1, 2]);
    assert.deepEqual((await store.eventsAfter(a.id, 1))[0].epoch, epoch);
    assert.deepEqual((await store.eventsAfter(b.id, 0)).map((e) => [e.sequence, e.type, e.state]), [[1, 'state', 'QUEUED']]);
    await assert.rejects(store.appendEvent('nope', { type: 'log' }), /no job/);
    // Appends racing on one job still get consecutive sequences.
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.appendEvent(b.id, { type: 'log', message: String(i) })));
    assert.deepEqual((await store.eventsAfter(b.id, 0)).map((e) => e.sequence), Array.from({ length: 21 }, (_, i) => i + 1));
  });

  it('stores a job and its first event together: a claimer never sees the job without it', async () => {
    const store = await open();
    {
      const job = await store.create('train_fold', { fold: 0 }, { type: 'state', message: 'queued' });
      const claimed = (await store.claimNext(['train_fold'], 'replica-a', 10_000))!;
      assert.equal(claimed.id, job.id);
      await store.appendEvent(job.id, { type: 'state', message: 'running' });
      const events = await store.eventsAfter(job.id, 0);
      assert.deepEqual(events.map((e) => [e.sequence, e.type, e.message, e.state]), [
        [1, 'state', 'queued', 'QUEUED'],
        [2, 'state', 'running', 'RUNNING'],
      ]);
      // Without a first event the job starts with none.
      assert.deepEqual(await store.eventsAfter((await store.create('train_fold', {})).id, 0), []);
    }
  });

  it('lists newest first, filtered by kind and state, page by page', async () => {
    const store = await open();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await store.create(i % 2 ? 'train_fold' : 'plan_and_preprocess', { i })).id);
    await store.update(ids[4], { state: 'FAILED' });
    const first = await store.list({ limit: 2 });
    assert.deepEqual(first.jobs.map((j) => j.id), [ids[4], ids[3]]);
    assert.ok(first.cursor !== undefined);
    const second = await store.list({ limit: 2, before: first.cursor });
    assert.deepEqual(second.jobs.map((j) => j.id), [ids[2], ids[1]]);
    const last = await store.list({ limit: 2, before: second.cursor });
    assert.deepEqual([last.jobs.map((j) => j.id), last.cursor], [[ids[0]], undefined]);
    assert.deepEqual((await store.list({ kind: 'train_fold' })).jobs.map((j) => j.id), [ids[3], ids[1]]);
    assert.deepEqual((await store.list({ state: 'FAILED' })).jobs.map((j) => j.id), [ids[4]]);
    assert.deepEqual((await store.inStates(['QUEUED'])).map((j) => j.id), ids.slice(0, 4));
  });

  it('claims the oldest queued job of the given kinds once, with an owner and a lease', async () => {
    const store = await open();
    const train1 = await store.create('train_fold', {});
    const cpu = await store.create('plan_and_preprocess', {});
    const train2 = await store.create('train_fold', {});
    const claimed = (await store.claimNext(['train_fold'], 'replica-a', 10_000))!;
    assert.deepEqual([claimed.id, claimed.state, claimed.owner, claimed.message], [train1.id, 'RUNNING', 'replica-a', 'running']);
    assert.ok(claimed.leaseExpiresAt! > Date.now() + 5_000 && claimed.startTime! > 0);
    assert.equal((await store.claimNext(['train_fold'], 'replica-b', 10_000))!.id, train2.id);
    assert.equal(await store.claimNext(['train_fold'], 'replica-b', 10_000), undefined);
    assert.equal(await store.claimNext([], 'replica-b', 10_000), undefined);
    assert.equal((await store.claimNext(['plan_and_preprocess', 'other'], 'replica-b', 10_000))!.id, cpu.id);
  });

  it('applies a conditional update only while the state and owner match', async () => {
    const store = await open();
    const job = await store.create('train_fold', {});
    await store.claimNext(['train_fold'], 'replica-a', 10_000);
    assert.equal(await store.updateIf(job.id, { states: ['RUNNING'], owner: 'replica-b' }, { state: 'SUCCEEDED' }), undefined);
    assert.equal(await store.updateIf(job.id, { states: ['QUEUED'] }, { state: 'CANCELLED' }), undefined);
    const done = await store.updateIf(job.id, { states: ['RUNNING'], owner: 'replica-a' }, { state: 'SUCCEEDED', owner: null, leaseExpiresAt: null, result: { ok: 1 } });
    assert.deepEqual([done?.state, done?.owner, done?.leaseExpiresAt, done?.result], ['SUCCEEDED', null, null, { ok: 1 }]);
    // An empty patch only tests the condition.
    assert.equal((await store.updateIf(job.id, { states: ['SUCCEEDED'] }, {}))?.id, job.id);
    assert.equal(await store.updateIf(job.id, { states: ['RUNNING'] }, {}), undefined);
  });

  it('renews leases while held; an expired lease is taken over by another owner', async () => {
    const store = await open();
    const a = await store.create('train_fold', {});
    const b = await store.create('train_fold', {});
    await store.claimNext(['train_fold'], 'replica-a', 400);
    await store.claimNext(['train_fold'], 'replica-b', 60_000);
    assert.deepEqual(await store.takeExpired('replica-c', 60_000), []);
    assert.deepEqual(await store.renewLeases('replica-a', [a.id, b.id], 400), [a.id]);
    await sleep(600);
    const taken = await store.takeExpired('replica-c', 60_000);
    assert.deepEqual(taken.map((j) => [j.id, j.owner, j.state]), [[a.id, 'replica-c', 'RUNNING']]);
    assert.deepEqual(await store.renewLeases('replica-a', [a.id], 400), [], 'the old owner lost it');
    assert.deepEqual(await store.takeExpired('replica-d', 60_000), [], 'taken once');
  });

  it('the named lock runs one holder at a time per key', async () => {
    const store = await open();
    const log: string[] = [];
    const hold = (key: string, tag: string) =>
      store.lock(key, async () => {
        log.push(`+${tag}`);
        await sleep(30);
        log.push(`-${tag}`);
        return tag;
      });
    assert.deepEqual(await Promise.all([hold('k', '1'), hold('k', '2'), hold('other', 'x')]), ['1', '2', 'x']);
    const k = log.filter((e) => !e.endsWith('x'));
    assert.deepEqual(k, ['+1', '-1', '+2', '-2']);
    await assert.rejects(store.lock('k', async () => Promise.reject(new Error('inside'))), /inside/);
    assert.equal(await store.lock('k', async () => 'free again'), 'free again');
  });
}
