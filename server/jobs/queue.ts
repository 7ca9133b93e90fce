// The job queue (DESIGN.md "Processes and concurrency"): jobs wait in the store as QUEUED and run
// as soon as their resource has a free slot (training: NNUNET_MAX_TRAINING_JOBS, default 1, as a
// GPU holds one training; cpu: NNUNET_MAX_CPU_JOBS, default 1), oldest first. A job is claimed
// in the store (RUNNING, owned by this replica, with a lease the queue renews while it runs), so
// replicas sharing a PostgreSQL store never run the same job, and a replica that dies stops
// renewing: another one takes the job over and resumes it (trainings from their latest
// checkpoint). Every event is stored (for WatchJob replay) and fanned out to live watchers: this
// process's own through an EventEmitter, other replicas' through the store's change feed. A
// watcher that goes away only unsubscribes: CancelJob is the one way to stop a job. A job kind is
// a function of (params, context) so the queue knows nothing about training or planning.
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isFinal, type EpochData, type JobChange, type JobEventRecord, type JobEventType, type JobRecord, type JobState, type JobStore } from './store.js';

export type Resource = 'training' | 'cpu';
const RESOURCES: Resource[] = ['training', 'cpu'];

export interface JobContext {
  readonly job: JobRecord;
  /** Aborted by CancelJob (reason 'cancel') or by the server stopping (reason 'shutdown'). */
  readonly signal: AbortSignal;
  /** Stores and fans out an event; `progress` (0..1) and `message` also update the job. */
  emit(event: { type: Exclude<JobEventType, 'state'>; message?: string; progress?: number; epoch?: EpochData }): void;
}

/** Thrown by a job that stopped because the server is shutting down; it goes back to QUEUED. */
export class JobInterrupted extends Error {
  constructor(message = 'the server stopped while the job ran') {
    super(message);
    this.name = 'JobInterrupted';
  }
}

export interface JobKindSpec {
  resource: Resource;
  /** Resolves with the job's result (result_json); a rejection fails the job with its message. */
  run(params: Record<string, unknown>, ctx: JobContext): Promise<Record<string, unknown> | void>;
  /**
   * Params to run again with when the server died while the job ran (e.g. continue training from
   * the latest checkpoint); undefined marks such a job FAILED with "server restarted".
   */
  resumeParams?(params: Record<string, unknown>): Record<string, unknown>;
}

/** The queue of a resource is full; the client should retry later. */
export class QueueFullError extends Error {
  constructor(
    readonly resource: Resource,
    readonly retryAfterMs: number,
  ) {
    super(`too many ${resource} jobs are queued; try again later`);
    this.name = 'QueueFullError';
  }
}

export class JobStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobStateError';
  }
}

export interface QueueOptions {
  limits?: Partial<Record<Resource, number>>;
  /** Queued (not running) jobs per resource beyond which submit throws QueueFullError. */
  maxQueued?: number;
  logger?: Logger;
  /** This process's name in job leases (NNUNET_REPLICA_ID); default host name, pid and a random suffix. */
  replicaId?: string;
  /**
   * How long a claimed job stays this replica's without a renewal (NNUNET_JOB_LEASE_MS, default
   * 30 s); leases are renewed every third of it, and a shared store is checked for expired ones
   * and for jobs queued by other replicas as often.
   */
  leaseMs?: number;
}

interface Running {
  controller: AbortController;
  /** Settles when the kind's run() has returned, whatever the job's state says. */
  settled: Promise<void>;
  resource: Resource;
}

/** A stored event announced without its body (another replica's NOTIFY, or a resync). */
interface EventHint {
  jobId: string;
  sequence: number;
}

const LEASE_EXPIRED = 'the replica running it stopped renewing its lease (it died or lost the database)';

export const defaultReplicaId = () => `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

export class JobQueue {
  readonly replicaId: string;
  private readonly events = new EventEmitter();
  private readonly running = new Map<string, Running>();
  private readonly limits: Record<Resource, number>;
  private readonly maxQueued: number;
  private readonly leaseMs: number;
  private readonly logger: Logger | undefined;
  private closing = false;
  private pumping = false;
  private pumpAgain = false;
  private ticker: NodeJS.Timeout | undefined;
  private stopChanges: (() => void) | undefined;

  constructor(
    readonly store: JobStore,
    private readonly kinds: Record<string, JobKindSpec>,
    o: QueueOptions = {},
  ) {
    this.limits = { training: Math.max(1, o.limits?.training ?? 1), cpu: Math.max(1, o.limits?.cpu ?? 1) };
    this.maxQueued = o.maxQueued ?? 100;
    this.logger = o.logger;
    this.replicaId = o.replicaId || defaultReplicaId();
    this.leaseMs = Math.max(300, o.leaseMs ?? 30_000);
    // Many concurrent WatchJob streams are normal; the default limit of 10 would warn.
    this.events.setMaxListeners(0);
  }

  /**
   * Startup. With a store of its own (SQLite) every job left RUNNING belongs to a server that
   * died; with a shared store only those whose lease ran out do. Such jobs are resumed when their
   * kind allows it (trainings continue from their latest checkpoint) and failed otherwise. Then
   * the queue runs, and with a shared store it renews its leases, takes over expired ones and
   * picks up jobs other replicas queued.
   */
  async recover(): Promise<void> {
    if (this.store.shared) {
      // A replica restarted under the same NNUNET_REPLICA_ID (a StatefulSet pod) need not wait for its old leases.
      const own = (await this.store.inStates(['RUNNING'])).filter((j) => j.owner === this.replicaId);
      await this.resumeOrphans(own, 'server restarted', this.replicaId);
      await this.resumeOrphans(await this.store.takeExpired(this.replicaId, this.leaseMs), LEASE_EXPIRED, this.replicaId);
    } else {
      await this.resumeOrphans(await this.store.inStates(['RUNNING']), 'server restarted');
    }
    this.ticker = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.ticker.unref();
    this.stopChanges = this.store.onChange?.((change) => this.onStoreChange(change));
    this.pump();
  }

  async submit(kind: string, params: Record<string, unknown>): Promise<JobRecord> {
    const spec = this.kinds[kind];
    if (!spec) throw new JobStateError(`unknown job kind ${kind}`);
    if (this.closing) throw new JobStateError('the server is shutting down');
    const queued = (await this.store.inStates(['QUEUED'])).filter((j) => this.kinds[j.kind]?.resource === spec.resource).length;
    if (queued >= this.maxQueued) throw new QueueFullError(spec.resource, 60_000);
    // The QUEUED event is stored with the job, so a replica that claims it at once still comes second.
    const job = await this.store.create(kind, params, { type: 'state', message: 'queued' });
    // Started on the next tick, so the caller sees (and can stream) the QUEUED event first.
    setImmediate(() => this.pump());
    return (await this.store.get(job.id))!;
  }

  get(id: string): Promise<JobRecord | undefined> {
    return this.store.get(id);
  }

  /**
   * Asks a job to stop: a queued one is CANCELLED at once, a running one is aborted (here, or by
   * the replica running it when it sees the CANCELLED state).
   */
  async cancel(id: string): Promise<JobRecord> {
    const job = await this.store.get(id);
    if (!job) throw new JobStateError(`no job ${id}`);
    if (isFinal(job.state)) throw new JobStateError(`job ${id} already ended (${job.state})`);
    const run = this.running.get(id);
    // The job ends now for its watchers; its resource slot is freed only when run() returns
    // (a child process is killed at once; in-process work runs to its end, its result dropped).
    run?.controller.abort('cancel');
    const ended = await this.finish(id, 'CANCELLED', { error: job.state === 'QUEUED' && !run ? 'cancelled by CancelJob before it started' : 'cancelled by CancelJob' });
    if (!ended) {
      const now = await this.store.get(id);
      throw new JobStateError(`job ${id} already ended (${now?.state ?? 'gone'})`);
    }
    return (await this.store.get(id))!;
  }

  /**
   * Calls `listener` with every stored event after `afterSequence`, in order and once each, then
   * with live ones; returns the unsubscribe function. The subscription starts before the stored
   * history is read, so an event stored meanwhile is neither missed nor repeated.
   */
  subscribe(id: string, afterSequence: number, listener: (event: JobEventRecord) => void, onCaughtUp?: () => void): () => void {
    let last = afterSequence;
    let closed = false;
    let chain: Promise<void> = Promise.resolve();
    const step = (fn: () => Promise<void> | void) => {
      chain = chain.then(fn).catch((err: Error) => this.logger?.warn({ event: 'job_watch_failed', jobId: id, err }, `reading events of job ${id} failed: ${err.message}`));
    };
    const catchUp = async () => {
      if (closed) return;
      for (const e of await this.store.eventsAfter(id, last)) {
        if (closed || e.sequence <= last) continue;
        last = e.sequence;
        listener(e);
      }
    };
    const onEvent = (e: JobEventRecord | EventHint) =>
      step(async () => {
        if (closed || e.sequence <= last) return;
        if ('type' in e && e.sequence === last + 1) {
          last = e.sequence;
          listener(e);
        } else {
          await catchUp(); // a hint, or a gap: the store has the events in order
        }
      });
    const channel = `job:${id}`;
    this.events.on(channel, onEvent);
    step(catchUp);
    if (onCaughtUp) step(onCaughtUp);
    return () => {
      closed = true;
      this.events.off(channel, onEvent);
    };
  }

  /** Events after `afterSequence`, then live ones, until the job's final state (or `signal`). */
  async *watch(id: string, afterSequence = 0, signal?: AbortSignal): AsyncGenerator<JobEventRecord> {
    const buffer: JobEventRecord[] = [];
    let wake: (() => void) | undefined;
    let caughtUp = false;
    const unsubscribe = this.subscribe(
      id,
      afterSequence,
      (e) => {
        buffer.push(e);
        wake?.();
      },
      () => {
        caughtUp = true;
        wake?.();
      },
    );
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (buffer.length > 0) {
          const e = buffer.shift()!;
          yield e;
          if (e.type === 'state' && isFinal(e.state)) return;
        }
        if (caughtUp) {
          // A job that ended before `afterSequence` has nothing more to send.
          const job = await this.store.get(id);
          if (!job || (isFinal(job.state) && job.lastSequence <= afterSequence)) return;
        }
        if (signal?.aborted) return;
        if (buffer.length > 0) continue;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Stops taking jobs and interrupts running ones (they go back to QUEUED for the next start). */
  async close(): Promise<void> {
    this.closing = true;
    if (this.ticker) clearInterval(this.ticker);
    this.stopChanges?.();
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort('shutdown');
    await Promise.all(runs.map((r) => r.settled));
  }

  private async publish(id: string, type: JobEventType, message?: string, epoch?: EpochData): Promise<JobEventRecord> {
    const event = await this.store.appendEvent(id, { type, message, epoch });
    this.events.emit(`job:${id}`, event);
    return event;
  }

  /** Ends a job unless it already ended (another replica or a CancelJob may have got there first). */
  private async finish(id: string, state: JobState, o: { error?: string; result?: Record<string, unknown> | null; message?: string; owner?: string } = {}): Promise<boolean> {
    const message = o.message ?? (state === 'SUCCEEDED' ? 'succeeded' : `${state.toLowerCase()}: ${o.error ?? ''}`);
    const done = await this.store.updateIf(
      id,
      { states: ['QUEUED', 'RUNNING'], ...(o.owner ? { owner: o.owner } : {}) },
      {
        state,
        finishTime: Date.now(),
        error: o.error ?? '',
        message,
        owner: null,
        leaseExpiresAt: null,
        ...(state === 'SUCCEEDED' ? { progress: 1, result: o.result ?? {} } : {}),
      },
    );
    if (done) await this.publish(id, 'state', message);
    return Boolean(done);
  }

  /** Runs the queue: serialised, so this process never claims past its limits. */
  private pump(): void {
    if (this.closing) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pumpOnce()
      .catch((err: Error) => this.logger?.error({ event: 'job_queue_failed', err }, `starting queued jobs failed: ${err.message}`))
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.pump();
        }
      });
  }

  private async pumpOnce(): Promise<void> {
    // A replica of another version may know kinds this one does not; only a store of our own fails them.
    if (!this.store.shared) {
      for (const job of await this.store.inStates(['QUEUED'])) {
        if (!this.kinds[job.kind]) await this.finish(job.id, 'FAILED', { error: `this server cannot run jobs of kind ${job.kind}` });
      }
    }
    const busy: Record<Resource, number> = { training: 0, cpu: 0 };
    for (const r of this.running.values()) busy[r.resource]++;
    for (const resource of RESOURCES) {
      const kinds = Object.keys(this.kinds).filter((k) => this.kinds[k].resource === resource);
      while (!this.closing && busy[resource] < this.limits[resource]) {
        const job = await this.store.claimNext(kinds, this.replicaId, this.leaseMs);
        if (!job) break;
        busy[resource]++;
        await this.start(job, this.kinds[job.kind]);
      }
    }
  }

  /** Starts a job this replica has claimed (RUNNING, its lease ours). */
  private async start(job: JobRecord, spec: JobKindSpec): Promise<void> {
    const controller = new AbortController();
    const owner = this.replicaId;
    // Events of one job are stored one after another, in the order the job emitted them.
    let pending: Promise<void> = Promise.resolve();
    const ctx: JobContext = {
      job,
      signal: controller.signal,
      emit: (e) => {
        pending = pending
          .then(async () => {
            const progress = e.progress === undefined ? undefined : Math.min(1, Math.max(0, e.progress));
            // Late events of a cancelled (or taken over) job, a child flushing its pipe, are dropped.
            const still = await this.store.updateIf(job.id, { states: ['RUNNING'], owner }, { progress, message: e.message });
            if (still) await this.publish(job.id, e.type, e.message, e.epoch);
          })
          .catch((err: Error) => this.logger?.warn({ event: 'job_event_failed', jobId: job.id, err }, `storing an event of job ${job.id} failed: ${err.message}`));
      },
    };
    let release!: () => void;
    const settled = new Promise<void>((resolve) => (release = resolve));
    this.running.set(job.id, { controller, settled, resource: spec.resource });
    await this.publish(job.id, 'state', 'running');
    this.logger?.info({ event: 'job_started', jobId: job.id, kind: job.kind, replica: owner }, `job ${job.id} (${job.kind}) started`);
    void (async () => {
      let outcome: { result?: Record<string, unknown> | void; error?: unknown };
      try {
        outcome = { result: await spec.run(job.params, ctx) };
      } catch (err) {
        outcome = { error: err };
      }
      await pending;
      const reason = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason === 'shutdown' || outcome.error instanceof JobInterrupted) await this.requeue(job.id, spec, 'interrupted by the server stopping: queued again to resume from its latest checkpoint');
      else if (reason === 'cancel' || reason === 'lost') return; // ended elsewhere (CancelJob, or another replica took it over)
      else if (outcome.error !== undefined) await this.finish(job.id, 'FAILED', { error: (outcome.error as Error)?.message ?? String(outcome.error), owner });
      else await this.finish(job.id, 'SUCCEEDED', { result: outcome.result ?? {}, owner });
    })()
      .catch((err: Error) => this.logger?.error({ event: 'job_end_failed', jobId: job.id, err }, `recording the end of job ${job.id} failed: ${err.message}`))
      .finally(() => {
        this.running.delete(job.id);
        release();
        this.pump();
      });
  }

  /** An interrupted job waits for the next start (here or on another replica) with its resume params, if any. */
  private async requeue(id: string, spec: JobKindSpec, message: string): Promise<void> {
    const job = await this.store.get(id);
    if (!job || isFinal(job.state)) return;
    if (!spec.resumeParams) {
      await this.finish(id, 'FAILED', { error: 'server stopped while the job ran', owner: this.replicaId });
      return;
    }
    const done = await this.store.updateIf(id, { states: ['RUNNING'], owner: this.replicaId }, { state: 'QUEUED', params: spec.resumeParams(job.params), message, owner: null, leaseExpiresAt: null });
    if (done) await this.publish(id, 'state', message);
  }

  /**
   * Jobs whose process died while they ran: resumed or failed. `owner`: the replica that must
   * hold them (a shared store); a store of our own has no other writer.
   */
  private async resumeOrphans(orphans: JobRecord[], why: string, owner?: string): Promise<void> {
    for (const job of orphans) {
      const spec = this.kinds[job.kind];
      if (spec?.resumeParams) {
        const message = `${why}: queued again to resume from its latest checkpoint`;
        const done = await this.store.updateIf(job.id, { states: ['RUNNING'], ...(owner ? { owner } : {}) }, { state: 'QUEUED', params: spec.resumeParams(job.params), message, owner: null, leaseExpiresAt: null });
        if (done) await this.publish(job.id, 'state', message);
      } else {
        await this.finish(job.id, 'FAILED', { error: why, owner });
      }
      this.logger?.warn({ event: 'job_recovered', jobId: job.id, kind: job.kind, previousOwner: job.owner }, `job ${job.id} (${job.kind}): ${why}`);
    }
  }

  /** Renews this replica's leases, takes over expired ones (shared store) and looks for queued jobs. */
  private async tick(): Promise<void> {
    if (this.closing) return;
    try {
      const mine = [...this.running.keys()];
      const held = new Set(await this.store.renewLeases(this.replicaId, mine, this.leaseMs));
      for (const id of mine) {
        // Cancelled elsewhere (state final) or taken over after a stall: stop working on it.
        if (!held.has(id)) this.running.get(id)?.controller.abort((await this.store.get(id))?.owner ? 'lost' : 'cancel');
      }
      if (this.store.shared) {
        await this.resumeOrphans(await this.store.takeExpired(this.replicaId, this.leaseMs), LEASE_EXPIRED, this.replicaId);
        this.pump();
      }
    } catch (err) {
      this.logger?.warn({ event: 'job_lease_failed', err }, `renewing job leases failed: ${(err as Error).message}`);
    }
  }

  /** Another replica stored an event: wake this replica's watchers, claim queued work, honour a cancel. */
  private onStoreChange(change: JobChange | 'resync'): void {
    if (change === 'resync') {
      for (const name of this.events.eventNames()) {
        const jobId = String(name).slice('job:'.length);
        this.events.emit(name, { jobId, sequence: Number.MAX_SAFE_INTEGER } satisfies EventHint);
      }
      this.pump();
      return;
    }
    this.events.emit(`job:${change.jobId}`, { jobId: change.jobId, sequence: change.sequence } satisfies EventHint);
    if (change.type !== 'state') return;
    if (change.state === 'QUEUED') this.pump();
    if (isFinal(change.state)) this.running.get(change.jobId)?.controller.abort('cancel');
  }
}
