// The job store (DESIGN.md "Processes and concurrency"): jobs and their events in one embedded
// SQLite file, <NNUNET_HOME>/jobs.sqlite, so a restarted server still knows what ran, what it
// reported and which trainings to resume. The JobStore interface is asynchronous because its other
// implementation, PostgreSQL (postgres-store.ts), serves several replicas; better-sqlite3 answers
// at once, every write being a few rows. The schema carries a version (PRAGMA user_version).
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { KeyedMutex } from './mutex.js';

export type JobState = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export const FINAL_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];
export const isFinal = (s: JobState) => FINAL_STATES.includes(s);

export type JobEventType = 'state' | 'progress' | 'epoch' | 'log';

/** Per-epoch numbers of a training job (JobEvent.epoch). */
export interface EpochData {
  epoch: number;
  numEpochs: number;
  trainLoss: number;
  valLoss: number;
  pseudoDice: number[];
  emaPseudoDice: number;
  learningRate: number;
  epochSeconds: number;
  newBest: boolean;
}

export interface JobRecord {
  id: string;
  kind: string;
  state: JobState;
  /** 0..1 */
  progress: number;
  message: string;
  error: string;
  params: Record<string, unknown>;
  result: Record<string, unknown> | null;
  /** Milliseconds since the epoch. */
  createTime: number;
  startTime: number | null;
  finishTime: number | null;
  /** The sequence of the job's latest event (0 before the first). */
  lastSequence: number;
  /** The replica running the job (NNUNET_REPLICA_ID), null unless RUNNING. */
  owner: string | null;
  /** When the owner's lease ends unless renewed (ms since the epoch, the store's clock). */
  leaseExpiresAt: number | null;
}

export interface JobEventRecord {
  jobId: string;
  sequence: number;
  time: number;
  type: JobEventType;
  message: string;
  progress: number;
  state: JobState;
  epoch: EpochData | null;
}

export interface JobFilter {
  kind?: string;
  state?: JobState;
  /** At most this many (newest first). */
  limit?: number;
  /** A cursor from a previous page: only jobs created before it. */
  before?: number;
}

export type JobPatch = Partial<Pick<JobRecord, 'state' | 'progress' | 'message' | 'error' | 'params' | 'result' | 'startTime' | 'finishTime' | 'owner' | 'leaseExpiresAt'>>;

/** What a conditional update requires of the job's row (compare-and-set across replicas). */
export interface JobCondition {
  states: JobState[];
  /** The replica that must hold the job's lease. */
  owner?: string;
}

/** A stored event announced by another process sharing the store (PostgreSQL NOTIFY). */
export interface JobChange {
  jobId: string;
  sequence: number;
  type: JobEventType;
  state: JobState;
}

/**
 * Jobs and their events. Every method is asynchronous, because the shared implementation
 * (PostgreSQL, several replicas) talks to a database server; the embedded one (SQLite) answers
 * at once. Claiming and lease renewal are compare-and-set updates, so two processes sharing a
 * store never run the same job.
 */
export interface JobStore {
  /** True when other server processes use the same store (jobs may run elsewhere). */
  readonly shared: boolean;
  /**
   * A new QUEUED job. With `first`, its first event (sequence 1) is stored in the same transaction,
   * so no other process (another replica claiming it) ever sees the job without that event.
   */
  create(kind: string, params: Record<string, unknown>, first?: { type: JobEventType; message?: string }): Promise<JobRecord>;
  get(id: string): Promise<JobRecord | undefined>;
  /** Newest first; `cursor` of the last row continues the listing (undefined at the end). */
  list(filter?: JobFilter): Promise<{ jobs: JobRecord[]; cursor: number | undefined }>;
  update(id: string, patch: JobPatch): Promise<JobRecord>;
  /** Applies `patch` only while the job matches `condition`; undefined when it did not. */
  updateIf(id: string, condition: JobCondition, patch: JobPatch): Promise<JobRecord | undefined>;
  /** Stores the next event of a job (sequence = previous + 1) with the job's progress and state. */
  appendEvent(id: string, event: { type: JobEventType; message?: string; epoch?: EpochData | null }): Promise<JobEventRecord>;
  eventsAfter(id: string, sequence: number): Promise<JobEventRecord[]>;
  /** Jobs in these states, oldest first (recovery and the queue bound). */
  inStates(states: JobState[]): Promise<JobRecord[]>;
  /**
   * Takes the oldest QUEUED job of one of `kinds`: RUNNING, owned by `owner`, its lease ending
   * `leaseMs` from now. Undefined when none is queued (or every candidate was taken meanwhile).
   */
  claimNext(kinds: string[], owner: string, leaseMs: number): Promise<JobRecord | undefined>;
  /** Extends the leases of `owner`'s RUNNING jobs among `ids`; returns the ids it still holds. */
  renewLeases(owner: string, ids: string[], leaseMs: number): Promise<string[]>;
  /** RUNNING jobs whose lease ran out (their replica died) become `owner`'s, with a fresh lease. */
  takeExpired(owner: string, leaseMs: number): Promise<JobRecord[]>;
  /** Runs `fn` while holding the named lock, excluding every process that shares the store. */
  lock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** Calls `listener` for events other processes store (and, after a reconnect, with `resync`). */
  onChange?(listener: (change: JobChange | 'resync') => void): () => void;
  close(): Promise<void>;
}

interface JobRow {
  rowid: number;
  id: string;
  kind: string;
  state: JobState;
  progress: number;
  message: string;
  error: string;
  params_json: string;
  result_json: string | null;
  create_time: number;
  start_time: number | null;
  finish_time: number | null;
  last_sequence: number;
  owner: string | null;
  lease_expires_at: number | null;
}

interface EventRow {
  job_id: string;
  sequence: number;
  time: number;
  type: JobEventType;
  message: string;
  progress: number;
  state: JobState;
  epoch_json: string | null;
}

/** Schema versions, applied in order; PRAGMA user_version holds the last one applied. */
const MIGRATIONS: string[] = [
  `
CREATE TABLE IF NOT EXISTS jobs (
  rowid INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  progress REAL NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL,
  result_json TEXT,
  create_time INTEGER NOT NULL,
  start_time INTEGER,
  finish_time INTEGER,
  last_sequence INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS job_events (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  sequence INTEGER NOT NULL,
  time INTEGER NOT NULL,
  type TEXT NOT NULL,
  message TEXT NOT NULL,
  progress REAL NOT NULL,
  state TEXT NOT NULL,
  epoch_json TEXT,
  PRIMARY KEY (job_id, sequence)
);
`,
  // 2: the lease of a running job (the store's contract is the same for SQLite and PostgreSQL).
  `
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER;
`,
];

export const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  kind: r.kind,
  state: r.state,
  progress: Number(r.progress),
  message: r.message,
  error: r.error,
  params: JSON.parse(r.params_json) as Record<string, unknown>,
  result: r.result_json ? (JSON.parse(r.result_json) as Record<string, unknown>) : null,
  // PostgreSQL returns BIGINT as a string.
  createTime: Number(r.create_time),
  startTime: r.start_time === null ? null : Number(r.start_time),
  finishTime: r.finish_time === null ? null : Number(r.finish_time),
  lastSequence: Number(r.last_sequence),
  owner: r.owner ?? null,
  leaseExpiresAt: r.lease_expires_at === null || r.lease_expires_at === undefined ? null : Number(r.lease_expires_at),
});

export const toEvent = (r: EventRow): JobEventRecord => ({
  jobId: r.job_id,
  sequence: Number(r.sequence),
  time: Number(r.time),
  type: r.type,
  message: r.message,
  progress: Number(r.progress),
  state: r.state,
  epoch: r.epoch_json ? (JSON.parse(r.epoch_json) as EpochData) : null,
});

/** Patch keys and their columns (the same in both stores). */
export const COLUMNS: Record<keyof JobPatch, string> = {
  state: 'state',
  progress: 'progress',
  message: 'message',
  error: 'error',
  params: 'params_json',
  result: 'result_json',
  startTime: 'start_time',
  finishTime: 'finish_time',
  owner: 'owner',
  leaseExpiresAt: 'lease_expires_at',
};

/** The patch as [column, value] pairs, JSON columns serialised, undefined fields left out. */
export function patchColumns(patch: JobPatch): [string, string | number | null][] {
  const out: [string, string | number | null][] = [];
  for (const [key, value] of Object.entries(patch) as [keyof JobPatch, unknown][]) {
    if (value === undefined) continue;
    out.push([COLUMNS[key], key === 'params' || key === 'result' ? (value === null ? null : JSON.stringify(value)) : (value as string | number | null)]);
  }
  return out;
}

export class SqliteJobStore implements JobStore {
  readonly shared = false;
  private readonly db: Database.Database;
  private readonly mutex = new KeyedMutex();

  /** `file` is a path (its folder is created) or ':memory:'. */
  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    // WAL: readers (ListJobs, WatchJob replay) never block the writer, and a crash loses nothing committed.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  private migrate(): void {
    this.db.transaction(() => {
      let version = this.db.pragma('user_version', { simple: true }) as number;
      // A file from before versioning has the version-1 tables and user_version 0.
      if (version === 0 && this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").get()) version = 1;
      if (version > MIGRATIONS.length) throw new Error(`the job store's schema (version ${version}) is newer than this server understands (${MIGRATIONS.length}); upgrade the server`);
      for (let v = version; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]);
      this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    })();
  }

  private getSync(id: string): JobRecord | undefined {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? toJob(row) : undefined;
  }

  async create(kind: string, params: Record<string, unknown>, first?: { type: JobEventType; message?: string }): Promise<JobRecord> {
    const id = randomUUID();
    const now = Date.now();
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO jobs (id, kind, state, params_json, create_time, last_sequence) VALUES (?, ?, ?, ?, ?, ?)')
        .run(id, kind, 'QUEUED', JSON.stringify(params), now, first ? 1 : 0);
      if (first) {
        this.db
          .prepare('INSERT INTO job_events (job_id, sequence, time, type, message, progress, state, epoch_json) VALUES (?, 1, ?, ?, ?, 0, ?, NULL)')
          .run(id, now, first.type, first.message ?? '', 'QUEUED');
      }
    })();
    return this.getSync(id)!;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return this.getSync(id);
  }

  async list(filter: JobFilter = {}): Promise<{ jobs: JobRecord[]; cursor: number | undefined }> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (clause: string, value: string | number) => {
      where.push(clause);
      args.push(value);
    };
    if (filter.kind) add('kind = ?', filter.kind);
    if (filter.state) add('state = ?', filter.state);
    if (filter.before !== undefined) add('rowid < ?', filter.before);
    const limit = filter.limit ?? 100;
    // One more than asked tells whether another page exists.
    const rows = this.db
      .prepare(`SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY rowid DESC LIMIT ?`)
      .all(...args, limit + 1) as JobRow[];
    const page = rows.slice(0, limit);
    return { jobs: page.map(toJob), cursor: rows.length > limit ? page[page.length - 1].rowid : undefined };
  }

  async update(id: string, patch: JobPatch): Promise<JobRecord> {
    const sets = patchColumns(patch);
    if (sets.length > 0) {
      const info = this.db.prepare(`UPDATE jobs SET ${sets.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?`).run(...sets.map(([, v]) => v), id);
      if (info.changes === 0) throw new Error(`no job ${id}`);
    }
    const job = this.getSync(id);
    if (!job) throw new Error(`no job ${id}`);
    return job;
  }

  async updateIf(id: string, condition: JobCondition, patch: JobPatch): Promise<JobRecord | undefined> {
    if (condition.states.length === 0) return undefined;
    const sets = patchColumns(patch);
    const where = [`id = ?`, `state IN (${condition.states.map(() => '?').join(', ')})`];
    const args: (string | number | null)[] = [id, ...condition.states];
    if (condition.owner !== undefined) {
      where.push('owner = ?');
      args.push(condition.owner);
    }
    // An empty patch only checks the condition.
    const row = sets.length
      ? this.db.prepare(`UPDATE jobs SET ${sets.map(([c]) => `${c} = ?`).join(', ')} WHERE ${where.join(' AND ')} RETURNING *`).get(...sets.map(([, v]) => v), ...args)
      : this.db.prepare(`SELECT * FROM jobs WHERE ${where.join(' AND ')}`).get(...args);
    return row ? toJob(row as JobRow) : undefined;
  }

  async appendEvent(id: string, event: { type: JobEventType; message?: string; epoch?: EpochData | null }): Promise<JobEventRecord> {
    // One transaction: the sequence is taken and the row written together, so sequences have no gaps.
    return this.db.transaction(() => {
      const job = this.db.prepare('SELECT state, progress, last_sequence FROM jobs WHERE id = ?').get(id) as Pick<JobRow, 'state' | 'progress' | 'last_sequence'> | undefined;
      if (!job) throw new Error(`no job ${id}`);
      const row: EventRow = {
        job_id: id,
        sequence: job.last_sequence + 1,
        time: Date.now(),
        type: event.type,
        message: event.message ?? '',
        progress: job.progress,
        state: job.state,
        epoch_json: event.epoch ? JSON.stringify(event.epoch) : null,
      };
      this.db
        .prepare('INSERT INTO job_events (job_id, sequence, time, type, message, progress, state, epoch_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(row.job_id, row.sequence, row.time, row.type, row.message, row.progress, row.state, row.epoch_json);
      this.db.prepare('UPDATE jobs SET last_sequence = ? WHERE id = ?').run(row.sequence, id);
      return toEvent(row);
    })();
  }

  async eventsAfter(id: string, sequence: number): Promise<JobEventRecord[]> {
    return (this.db.prepare('SELECT * FROM job_events WHERE job_id = ? AND sequence > ? ORDER BY sequence').all(id, sequence) as EventRow[]).map(toEvent);
  }

  async inStates(states: JobState[]): Promise<JobRecord[]> {
    if (states.length === 0) return [];
    return (this.db.prepare(`SELECT * FROM jobs WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY rowid`).all(...states) as JobRow[]).map(toJob);
  }

  async claimNext(kinds: string[], owner: string, leaseMs: number): Promise<JobRecord | undefined> {
    if (kinds.length === 0) return undefined;
    const now = Date.now();
    // One statement: SQLite runs one writer at a time, so the oldest queued job is taken once.
    const row = this.db
      .prepare(
        `UPDATE jobs SET state = 'RUNNING', owner = ?, lease_expires_at = ?, start_time = COALESCE(start_time, ?), message = 'running'
         WHERE rowid = (SELECT rowid FROM jobs WHERE state = 'QUEUED' AND kind IN (${kinds.map(() => '?').join(', ')}) ORDER BY rowid LIMIT 1)
         RETURNING *`,
      )
      .get(owner, now + leaseMs, now, ...kinds) as JobRow | undefined;
    return row ? toJob(row) : undefined;
  }

  async renewLeases(owner: string, ids: string[], leaseMs: number): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = this.db
      .prepare(`UPDATE jobs SET lease_expires_at = ? WHERE owner = ? AND state = 'RUNNING' AND id IN (${ids.map(() => '?').join(', ')}) RETURNING id`)
      .all(Date.now() + leaseMs, owner, ...ids) as { id: string }[];
    return rows.map((r) => r.id);
  }

  async takeExpired(owner: string, leaseMs: number): Promise<JobRecord[]> {
    const now = Date.now();
    const rows = this.db
      .prepare(`UPDATE jobs SET owner = ?, lease_expires_at = ? WHERE state = 'RUNNING' AND (lease_expires_at IS NULL OR lease_expires_at < ?) RETURNING *`)
      .all(owner, now + leaseMs, now) as JobRow[];
    return rows.map(toJob).sort((a, b) => a.createTime - b.createTime);
  }

  /** One server per SQLite file, so an in-process lock excludes every writer. */
  lock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(key, fn);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
