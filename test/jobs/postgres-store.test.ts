// The PostgreSQL job store against a real private PostgreSQL (postgres.ts): the JobStore contract
// (store-contract.ts), and what only a shared store has to do: replicas opening one database at
// once migrate it once (schema version recorded), replicas claiming at once never take the same
// job, events stored by one replica reach another's change feed, and the named lock excludes
// across replicas.
import assert from 'node:assert/strict';
import pg from 'pg';
import { openJobStore } from '../../server/jobs/index.js';
import { POSTGRES_SCHEMA_VERSION, PostgresJobStore } from '../../server/jobs/postgres-store.js';
import type { JobChange, JobStore } from '../../server/jobs/store.js';
import { jobStoreContract } from './store-contract.js';
import { usePostgres } from './postgres.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('server/jobs/postgres-store (PostgreSQL)', function () {
  this.timeout(120_000);
  const postgres = usePostgres();
  const stores: JobStore[] = [];
  const open = async (url: string) => {
    const s = await PostgresJobStore.open(url);
    stores.push(s);
    return s;
  };

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  describe('the JobStore contract', () => {
    jobStoreContract({ location: () => postgres().createDatabase(), open: (url) => PostgresJobStore.open(url) });
  });

  it('replicas starting together create the schema once and record its version', async () => {
    const url = await postgres().createDatabase();
    await Promise.all([open(url), open(url), open(url)]);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const versions = (await client.query<{ version: number }>('SELECT version FROM nnunet_schema')).rows;
      assert.deepEqual(versions, [{ version: POSTGRES_SCHEMA_VERSION }]);
    } finally {
      await client.end();
    }
    // Opening an up-to-date database again changes nothing.
    const again = await open(url);
    assert.deepEqual((await again.list()).jobs, []);
  });

  it('three claimers on two replicas take every queued job exactly once', async () => {
    const url = await postgres().createDatabase();
    const [a, b] = [await open(url), await open(url)];
    const ids = new Set<string>();
    for (let i = 0; i < 30; i++) ids.add((await a.create('train_fold', { i })).id);
    const claimAll = async (store: JobStore, owner: string) => {
      const got: string[] = [];
      for (;;) {
        const job = await store.claimNext(['train_fold'], owner, 60_000);
        if (!job) return got;
        got.push(job.id);
      }
    };
    const [byA, byB, byA2] = await Promise.all([claimAll(a, 'replica-a'), claimAll(b, 'replica-b'), claimAll(a, 'replica-a2')]);
    const all = [...byA, ...byB, ...byA2];
    assert.equal(all.length, 30);
    assert.deepEqual(new Set(all), ids);
    for (const id of byB) assert.equal((await a.get(id))!.owner, 'replica-b');
  });

  it("another replica's stored events arrive through its change feed", async () => {
    const url = await postgres().createDatabase();
    const [writer, reader] = [await open(url), await open(url)];
    const changes: JobChange[] = [];
    const stop = reader.onChange!((c) => c !== 'resync' && changes.push(c));
    const job = await writer.create('train_fold', {});
    await writer.appendEvent(job.id, { type: 'state', message: 'queued' });
    await writer.update(job.id, { state: 'RUNNING' });
    await writer.appendEvent(job.id, { type: 'state', message: 'running' });
    const t0 = Date.now();
    while (changes.length < 2 && Date.now() - t0 < 5000) await sleep(10);
    stop();
    assert.deepEqual(changes, [
      { jobId: job.id, sequence: 1, type: 'state', state: 'QUEUED' },
      { jobId: job.id, sequence: 2, type: 'state', state: 'RUNNING' },
    ]);
  });

  it('the named lock excludes across replicas (an advisory lock)', async () => {
    const url = await postgres().createDatabase();
    const [a, b] = [await open(url), await open(url)];
    let inside = 0;
    let most = 0;
    const hold = (s: JobStore) =>
      s.lock('/data/nnUNet_raw/Dataset001_X', async () => {
        most = Math.max(most, ++inside);
        await sleep(20);
        inside--;
      });
    await Promise.all([hold(a), hold(b), hold(a), hold(b), hold(b)]);
    assert.equal(most, 1);
  });

  it('NNUNET_DATABASE_URL selects PostgreSQL; a wrong URL is refused with the setting named', async () => {
    const url = await postgres().createDatabase();
    const roots = { raw: '/nonexistent/raw', preprocessed: '/nonexistent/pre', results: '/nonexistent/res' };
    const store = await openJobStore(roots, undefined, { NNUNET_DATABASE_URL: url });
    stores.push(store);
    assert.ok(store instanceof PostgresJobStore && store.shared);
    await assert.rejects(openJobStore(roots, undefined, { NNUNET_DATABASE_URL: 'mysql://x' }), /NNUNET_DATABASE_URL must be a postgres:\/\//);
    const closedPort = `postgres://postgres@127.0.0.1:${postgres().port}/no_such_database`;
    await assert.rejects(openJobStore(roots, undefined, { NNUNET_DATABASE_URL: closedPort }), /NNUNET_DATABASE_URL: cannot use the PostgreSQL job store .*no_such_database/);
  });
});
