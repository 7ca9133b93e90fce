// The job store for several replicas (NNUNET_DATABASE_URL=postgres://…): the same jobs and events
// as the SQLite store, in PostgreSQL, because SQLite's file locking over a shared network volume
// is not safe. A replica claims a queued job with SELECT … FOR UPDATE SKIP LOCKED and holds it by
// a lease (owner, lease_expires_at on the database's clock) that it renews while the job runs;
// another replica takes over a job whose lease ran out. Every stored event is announced by a
// trigger through NOTIFY (job id and sequence only; the table stays the source of truth), so a
// watcher on any replica sees it at once without polling; after the listening connection drops,
// watchers re-read what they missed. Named locks are session advisory locks.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { KeyedMutex } from './mutex.js';
import { patchColumns, toEvent, toJob, type EpochData, type JobChange, type JobCondition, type JobEventRecord, type JobEventType, type JobFilter, type JobPatch, type JobRecord, type JobState, type JobStore } from './store.js';

const CHANNEL = 'nnunet_job_events';
/** Milliseconds since the epoch on the database server's clock: leases never depend on replica clocks. */
const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** The advisory lock key that serialises schema migrations of replicas starting together. */
const MIGRATION_LOCK = 7_221_001;

/** Schema versions, applied in order inside one transaction; nnunet_schema holds the last one applied. */
const MIGRATIONS: string[] = [
  `
CREATE TABLE IF NOT EXISTS jobs (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  progress DOUBLE PRECISION NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL,
  result_json TEXT,
  create_time BIGINT NOT NULL,
  start_time BIGINT,
  finish_time BIGINT,
  last_sequence INTEGER NOT NULL DEFAULT 0,
  owner TEXT,
  lease_expires_at BIGINT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE TABLE IF NOT EXISTS job_events (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  sequence INTEGER NOT NULL,
  time BIGINT NOT NULL,
  type TEXT NOT NULL,
  message TEXT NOT NULL,
  progress DOUBLE PRECISION NOT NULL,
  state TEXT NOT NULL,
  epoch_json TEXT,
  PRIMARY KEY (job_id, sequence)
);
CREATE OR REPLACE FUNCTION nnunet_job_event_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('${CHANNEL}', NEW.job_id || ':' || NEW.sequence || ':' || NEW.type || ':' || NEW.state);
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS job_events_notify ON job_events;
CREATE TRIGGER job_events_notify AFTER INSERT ON job_events FOR EACH ROW EXECUTE FUNCTION nnunet_job_event_notify();
`,
];
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

type Value = string | number | null | string[];

export interface PostgresStoreOptions {
  /** Connections in the pool (queries, and one per held named lock). */
  poolSize?: number;
  logger?: Logger;
}

export class PostgresJobStore implements JobStore {
  readonly shared = true;
  private readonly pool: pg.Pool;
  private readonly mutex = new KeyedMutex();
  private readonly listeners = new Set<(change: JobChange | 'resync') => void>();
  private listener: pg.Client | undefined;
  private reconnect: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly url: string,
    private readonly o: PostgresStoreOptions,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: o.poolSize ?? 10 });
    // An idle connection the server closed must not take the process down; the pool replaces it.
    this.pool.on('error', (err) => o.logger?.warn({ event: 'postgres_idle_error', err }, `PostgreSQL connection lost: ${err.message}`));
  }

  /** Connects, creates or upgrades the schema, and starts listening for other replicas' events. */
  static async open(url: string, o: PostgresStoreOptions = {}): Promise<PostgresJobStore> {
    const store = new PostgresJobStore(url, o);
    try {
      await store.migrate();
      await store.listen();
    } catch (err) {
      await store.close();
      throw new Error(`NNUNET_DATABASE_URL: cannot use the PostgreSQL job store at ${redact(url)}: ${(err as Error).message}`, { cause: err });
    }
    return store;
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS nnunet_schema (version INTEGER NOT NULL)');
      const row = (await client.query<{ version: number }>('SELECT version FROM nnunet_schema')).rows[0];
      const version = row?.version ?? 0;
      if (version > MIGRATIONS.length) throw new Error(`the schema (version ${version}) is newer than this server understands (${MIGRATIONS.length}); upgrade the server`);
      for (let v = version; v < MIGRATIONS.length; v++) await client.query(MIGRATIONS[v]);
      if (row) await client.query('UPDATE nnunet_schema SET version = $1', [MIGRATIONS.length]);
      else await client.query('INSERT INTO nnunet_schema (version) VALUES ($1)', [MIGRATIONS.length]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** One dedicated connection LISTENs; when it drops it is reopened and watchers resync. */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      const change = parseChange(msg.payload);
      if (change) for (const l of this.listeners) l(change);
    });
    const lost = (err?: Error) => {
      if (this.closed || this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => undefined);
      this.o.logger?.warn({ event: 'postgres_listen_lost', err }, `PostgreSQL event connection lost${err ? `: ${err.message}` : ''}; reconnecting`);
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.listener = client;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnect) return;
    this.reconnect = setTimeout(() => {
      this.reconnect = undefined;
      this.listen().then(
        () => {
          for (const l of this.listeners) l('resync');
        },
        () => this.scheduleReconnect(),
      );
    }, 1000);
    this.reconnect.unref();
  }

  onChange(listener: (change: JobChange | 'resync') => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async rows<T extends pg.QueryResultRow>(sql: string, args: Value[] = []): Promise<T[]> {
    return (await this.pool.query<T>(sql, args)).rows;
  }

  async create(kind: string, params: Record<string, unknown>, first?: { type: JobEventType; message?: string }): Promise<JobRecord> {
    // One statement: the job and its first event become visible together.
    const [row] = await this.rows(
      `WITH j AS (INSERT INTO jobs (id, kind, state, params_json, create_time, last_sequence) VALUES ($1, $2, 'QUEUED', $3, $4, $5) RETURNING *),
       e AS (INSERT INTO job_events (job_id, sequence, time, type, message, progress, state, epoch_json)
             SELECT id, 1, $4, $6, $7, progress, state, NULL FROM j WHERE $5::int = 1)
       SELECT * FROM j`,
      [randomUUID(), kind, JSON.stringify(params), Date.now(), first ? 1 : 0, first?.type ?? 'state', first?.message ?? ''],
    );
    return toJob(row as never);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const [row] = await this.rows('SELECT * FROM jobs WHERE id = $1', [id]);
    return row ? toJob(row as never) : undefined;
  }

  async list(filter: JobFilter = {}): Promise<{ jobs: JobRecord[]; cursor: number | undefined }> {
    const where: string[] = [];
    const args: Value[] = [];
    const add = (column: string, op: string, value: Value) => {
      args.push(value);
      where.push(`${column} ${op} $${args.length}`);
    };
    if (filter.kind) add('kind', '=', filter.kind);
    if (filter.state) add('state', '=', filter.state);
    if (filter.before !== undefined) add('seq', '<', filter.before);
    const limit = filter.limit ?? 100;
    args.push(limit + 1);
    // One more than asked tells whether another page exists.
    const rows = await this.rows<{ seq: string }>(`SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${args.length}`, args);
    const page = rows.slice(0, limit);
    return { jobs: page.map((r) => toJob(r as never)), cursor: rows.length > limit ? Number(page[page.length - 1].seq) : undefined };
  }

  async update(id: string, patch: JobPatch): Promise<JobRecord> {
    const sets = patchColumns(patch);
    const row = sets.length
      ? (await this.rows(`UPDATE jobs SET ${sets.map(([c], i) => `${c} = $${i + 2}`).join(', ')} WHERE id = $1 RETURNING *`, [id, ...sets.map(([, v]) => v)]))[0]
      : (await this.rows('SELECT * FROM jobs WHERE id = $1', [id]))[0];
    if (!row) throw new Error(`no job ${id}`);
    return toJob(row as never);
  }

  async updateIf(id: string, condition: JobCondition, patch: JobPatch): Promise<JobRecord | undefined> {
    if (condition.states.length === 0) return undefined;
    const sets = patchColumns(patch);
    const args: Value[] = [id, ...sets.map(([, v]) => v)];
    const where = [`id = $1`, `state = ANY($${args.push(condition.states)}::text[])`];
    if (condition.owner !== undefined) where.push(`owner = $${args.push(condition.owner)}`);
    // The row lock an UPDATE takes makes this a compare-and-set: of two replicas, one wins.
    const [row] = sets.length
      ? await this.rows(`UPDATE jobs SET ${sets.map(([c], i) => `${c} = $${i + 2}`).join(', ')} WHERE ${where.join(' AND ')} RETURNING *`, args)
      : await this.rows(`SELECT * FROM jobs WHERE ${where.join(' AND ')}`, args);
    return row ? toJob(row as never) : undefined;
  }

  async appendEvent(id: string, event: { type: JobEventType; message?: string; epoch?: EpochData | null }): Promise<JobEventRecord> {
    // One statement: the job row's lock orders concurrent appends, so sequences have no gaps.
    const [row] = await this.rows(
      `WITH j AS (UPDATE jobs SET last_sequence = last_sequence + 1 WHERE id = $1 RETURNING id, last_sequence, state, progress)
       INSERT INTO job_events (job_id, sequence, time, type, message, progress, state, epoch_json)
       SELECT id, last_sequence, $2, $3, $4, progress, state, $5 FROM j
       RETURNING *`,
      [id, Date.now(), event.type, event.message ?? '', event.epoch ? JSON.stringify(event.epoch) : null],
    );
    if (!row) throw new Error(`no job ${id}`);
    return toEvent(row as never);
  }

  async eventsAfter(id: string, sequence: number): Promise<JobEventRecord[]> {
    return (await this.rows('SELECT * FROM job_events WHERE job_id = $1 AND sequence > $2 ORDER BY sequence', [id, sequence])).map((r) => toEvent(r as never));
  }

  async inStates(states: JobState[]): Promise<JobRecord[]> {
    if (states.length === 0) return [];
    return (await this.rows('SELECT * FROM jobs WHERE state = ANY($1::text[]) ORDER BY seq', [states])).map((r) => toJob(r as never));
  }

  async claimNext(kinds: string[], owner: string, leaseMs: number): Promise<JobRecord | undefined> {
    if (kinds.length === 0) return undefined;
    // SKIP LOCKED: replicas claiming at the same moment take different jobs instead of waiting.
    const [row] = await this.rows(
      `UPDATE jobs SET state = 'RUNNING', owner = $2, lease_expires_at = ${NOW_MS} + $3, start_time = COALESCE(start_time, $4), message = 'running'
       WHERE seq = (SELECT seq FROM jobs WHERE state = 'QUEUED' AND kind = ANY($1::text[]) ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [kinds, owner, leaseMs, Date.now()],
    );
    return row ? toJob(row as never) : undefined;
  }

  async renewLeases(owner: string, ids: string[], leaseMs: number): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows<{ id: string }>(
      `UPDATE jobs SET lease_expires_at = ${NOW_MS} + $3 WHERE owner = $1 AND state = 'RUNNING' AND id = ANY($2::text[]) RETURNING id`,
      [owner, ids, leaseMs],
    );
    return rows.map((r) => r.id);
  }

  async takeExpired(owner: string, leaseMs: number): Promise<JobRecord[]> {
    const rows = await this.rows(
      `UPDATE jobs SET owner = $1, lease_expires_at = ${NOW_MS} + $2
       WHERE seq IN (SELECT seq FROM jobs WHERE state = 'RUNNING' AND (lease_expires_at IS NULL OR lease_expires_at < ${NOW_MS}) FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [owner, leaseMs],
    );
    return rows.map((r) => toJob(r as never)).sort((a, b) => a.createTime - b.createTime);
  }

  /**
   * A session advisory lock on the key's hash, held on one pooled connection while `fn` runs;
   * this replica's own callers queue in process first, so each waits without holding a connection.
   */
  lock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(key, async () => {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
        try {
          return await fn();
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch((err: Error) => (broken = err));
        }
      } finally {
        // A connection whose unlock failed is closed, which releases its session locks.
        client.release(broken);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnect) clearTimeout(this.reconnect);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}

function parseChange(payload: string): JobChange | undefined {
  // <job id>:<sequence>:<type>:<state>; job ids are UUIDs, so the colons are unambiguous.
  const [jobId, sequence, type, state] = payload.split(':');
  const n = Number(sequence);
  if (!jobId || !Number.isSafeInteger(n)) return undefined;
  return { jobId, sequence: n, type: type as JobEventType, state: state as JobState };
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}
