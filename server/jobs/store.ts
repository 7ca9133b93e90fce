// The job store (DESIGN.md "Processes and concurrency"): jobs and their events in one embedded
// SQLite file, <NNUNET_HOME>/jobs.sqlite, so a restarted server still knows what ran, what it
// reported and which trainings to resume. better-sqlite3 is synchronous on purpose: every write
// is a few rows, and appending an event and notifying watchers in the same tick means a watcher
// that reads the stored history and then subscribes can neither miss nor repeat an event.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

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

export type JobPatch = Partial<Pick<JobRecord, 'state' | 'progress' | 'message' | 'error' | 'params' | 'result' | 'startTime' | 'finishTime'>>;

export interface JobStore {
  create(kind: string, params: Record<string, unknown>): JobRecord;
  get(id: string): JobRecord | undefined;
  /** Newest first; `cursor` of the last row continues the listing (undefined at the end). */
  list(filter?: JobFilter): { jobs: JobRecord[]; cursor: number | undefined };
  update(id: string, patch: JobPatch): JobRecord;
  /** Stores the next event of a job (sequence = previous + 1) with the job's progress and state. */
  appendEvent(id: string, event: { type: JobEventType; message?: string; epoch?: EpochData | null }): JobEventRecord;
  eventsAfter(id: string, sequence: number): JobEventRecord[];
  /** Jobs in these states, oldest first (recovery and the queue's restart). */
  inStates(states: JobState[]): JobRecord[];
  close(): void;
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

const SCHEMA = `
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
`;

const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  kind: r.kind,
  state: r.state,
  progress: r.progress,
  message: r.message,
  error: r.error,
  params: JSON.parse(r.params_json) as Record<string, unknown>,
  result: r.result_json ? (JSON.parse(r.result_json) as Record<string, unknown>) : null,
  createTime: r.create_time,
  startTime: r.start_time,
  finishTime: r.finish_time,
  lastSequence: r.last_sequence,
});

const toEvent = (r: EventRow): JobEventRecord => ({
  jobId: r.job_id,
  sequence: r.sequence,
  time: r.time,
  type: r.type,
  message: r.message,
  progress: r.progress,
  state: r.state,
  epoch: r.epoch_json ? (JSON.parse(r.epoch_json) as EpochData) : null,
});

const COLUMNS: Record<keyof JobPatch, string> = {
  state: 'state',
  progress: 'progress',
  message: 'message',
  error: 'error',
  params: 'params_json',
  result: 'result_json',
  startTime: 'start_time',
  finishTime: 'finish_time',
};

export class SqliteJobStore implements JobStore {
  private readonly db: Database.Database;

  /** `file` is a path (its folder is created) or ':memory:'. */
  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    // WAL: readers (ListJobs, WatchJob replay) never block the writer, and a crash loses nothing committed.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
  }

  create(kind: string, params: Record<string, unknown>): JobRecord {
    const id = randomUUID();
    this.db
      .prepare('INSERT INTO jobs (id, kind, state, params_json, create_time) VALUES (?, ?, ?, ?, ?)')
      .run(id, kind, 'QUEUED', JSON.stringify(params), Date.now());
    return this.get(id)!;
  }

  get(id: string): JobRecord | undefined {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? toJob(row) : undefined;
  }

  list(filter: JobFilter = {}): { jobs: JobRecord[]; cursor: number | undefined } {
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

  update(id: string, patch: JobPatch): JobRecord {
    const sets: string[] = [];
    const args: (string | number | null)[] = [];
    for (const [key, value] of Object.entries(patch) as [keyof JobPatch, unknown][]) {
      if (value === undefined) continue;
      sets.push(`${COLUMNS[key]} = ?`);
      args.push(key === 'params' || key === 'result' ? (value === null ? null : JSON.stringify(value)) : (value as string | number | null));
    }
    if (sets.length > 0) {
      const info = this.db.prepare(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
      if (info.changes === 0) throw new Error(`no job ${id}`);
    }
    const job = this.get(id);
    if (!job) throw new Error(`no job ${id}`);
    return job;
  }

  appendEvent(id: string, event: { type: JobEventType; message?: string; epoch?: EpochData | null }): JobEventRecord {
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

  eventsAfter(id: string, sequence: number): JobEventRecord[] {
    return (this.db.prepare('SELECT * FROM job_events WHERE job_id = ? AND sequence > ? ORDER BY sequence').all(id, sequence) as EventRow[]).map(toEvent);
  }

  inStates(states: JobState[]): JobRecord[] {
    if (states.length === 0) return [];
    return (this.db.prepare(`SELECT * FROM jobs WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY rowid`).all(...states) as JobRow[]).map(toJob);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
