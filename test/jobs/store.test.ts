// The SQLite job store (the embedded default): the JobStore contract (store-contract.ts), the
// database file and its folder created on first use, and a file from before the schema carried a
// version upgraded in place.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../../server/jobs/store.js';
import { tempDir } from '../helpers.js';
import { jobStoreContract } from './store-contract.js';

describe('server/jobs/store (SQLite)', () => {
  let t: ReturnType<typeof tempDir>;
  let n = 0;
  beforeEach(() => (t = tempDir('nnunet-jobstore-')));
  afterEach(() => t.cleanup());

  describe('the JobStore contract', () => {
    jobStoreContract({
      location: async () => join(t.dir, `home${++n}`, 'jobs.sqlite'),
      open: async (file) => new SqliteJobStore(file),
    });
  });

  it('creates the file and its folder, and upgrades a file written before schema versions', async () => {
    const file = join(t.dir, 'old', 'jobs.sqlite');
    const fresh = new SqliteJobStore(file);
    await fresh.close();
    assert.ok(existsSync(file));
    // The first release's tables, without the lease columns and with user_version 0.
    const oldFile = join(t.dir, 'v1.sqlite');
    const db = new Database(oldFile);
    db.exec(`CREATE TABLE jobs (rowid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, state TEXT NOT NULL,
      progress REAL NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', params_json TEXT NOT NULL, result_json TEXT,
      create_time INTEGER NOT NULL, start_time INTEGER, finish_time INTEGER, last_sequence INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE job_events (job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, sequence INTEGER NOT NULL, time INTEGER NOT NULL, type TEXT NOT NULL,
      message TEXT NOT NULL, progress REAL NOT NULL, state TEXT NOT NULL, epoch_json TEXT, PRIMARY KEY (job_id, sequence));
      INSERT INTO jobs (id, kind, state, params_json, create_time) VALUES ('old-job', 'train_fold', 'RUNNING', '{"fold":"0"}', 1);`);
    db.close();
    const store = new SqliteJobStore(oldFile);
    const job = (await store.get('old-job'))!;
    assert.deepEqual([job.state, job.owner, job.leaseExpiresAt, job.params], ['RUNNING', null, null, { fold: '0' }]);
    assert.equal((await store.takeExpired('me', 1000))[0].id, 'old-job', 'a job without a lease counts as expired');
    await store.close();
    const again = new Database(oldFile);
    assert.equal(again.pragma('user_version', { simple: true }), 2);
    again.close();
  });
});
