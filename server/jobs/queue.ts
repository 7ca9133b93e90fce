// The job queue (DESIGN.md "Processes and concurrency"): jobs wait in the store as QUEUED and run
// as soon as their resource has a free slot (training: NNUNET_MAX_TRAINING_JOBS, default 1, as a
// GPU holds one training; cpu: NNUNET_MAX_CPU_JOBS, default 1), oldest first. Every event is
// stored (for WatchJob replay) and then fanned out to all live watchers through an EventEmitter;
// a watcher that goes away only unsubscribes: CancelJob is the one way to stop a job. A job kind
// is a function of (params, context) so the queue knows nothing about training or planning.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { isFinal, type EpochData, type JobEventRecord, type JobEventType, type JobRecord, type JobState, type JobStore } from './store.js';

export type Resource = 'training' | 'cpu';

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
}

interface Running {
  controller: AbortController;
  /** Settles when the kind's run() has returned, whatever the job's state says. */
  settled: Promise<void>;
  resource: Resource;
}

export class JobQueue {
  private readonly events = new EventEmitter();
  private readonly running = new Map<string, Running>();
  private readonly limits: Record<Resource, number>;
  private readonly maxQueued: number;
  private closing = false;

  constructor(
    readonly store: JobStore,
    private readonly kinds: Record<string, JobKindSpec>,
    o: QueueOptions = {},
  ) {
    this.limits = { training: Math.max(1, o.limits?.training ?? 1), cpu: Math.max(1, o.limits?.cpu ?? 1) };
    this.maxQueued = o.maxQueued ?? 100;
    this.logger = o.logger;
    // Many concurrent WatchJob streams are normal; the default limit of 10 would warn.
    this.events.setMaxListeners(0);
  }

  private readonly logger: Logger | undefined;

  /**
   * Startup: jobs left RUNNING by a server that died are resumed when their kind allows it
   * (trainings continue from their latest checkpoint) and failed otherwise; then the queue runs.
   */
  recover(): void {
    for (const job of this.store.inStates(['RUNNING'])) {
      const spec = this.kinds[job.kind];
      if (spec?.resumeParams) {
        this.store.update(job.id, { state: 'QUEUED', params: spec.resumeParams(job.params), message: 'server restarted: resuming' });
        this.publish(job.id, 'state', 'server restarted: queued again to resume from its latest checkpoint');
      } else {
        this.finish(job.id, 'FAILED', { error: 'server restarted' });
      }
    }
    this.pump();
  }

  submit(kind: string, params: Record<string, unknown>): JobRecord {
    const spec = this.kinds[kind];
    if (!spec) throw new JobStateError(`unknown job kind ${kind}`);
    if (this.closing) throw new JobStateError('the server is shutting down');
    const queued = this.store.inStates(['QUEUED']).filter((j) => this.kinds[j.kind]?.resource === spec.resource).length;
    if (queued >= this.maxQueued) throw new QueueFullError(spec.resource, 60_000);
    const job = this.store.create(kind, params);
    this.publish(job.id, 'state', 'queued');
    // Started on the next tick, so the caller sees (and can stream) the QUEUED event first.
    setImmediate(() => this.pump());
    return this.store.get(job.id)!;
  }

  get(id: string): JobRecord | undefined {
    return this.store.get(id);
  }

  /** Asks a job to stop: a queued one is CANCELLED at once, a running one is aborted. */
  cancel(id: string): JobRecord {
    const job = this.store.get(id);
    if (!job) throw new JobStateError(`no job ${id}`);
    if (isFinal(job.state)) throw new JobStateError(`job ${id} already ended (${job.state})`);
    const run = this.running.get(id);
    if (run) {
      run.controller.abort('cancel');
      // The job ends now for its watchers; its resource slot is freed only when run() returns
      // (a child process is killed at once; in-process work runs to its end, its result dropped).
      this.finish(id, 'CANCELLED', { error: 'cancelled by CancelJob' });
    } else {
      this.finish(id, 'CANCELLED', { error: 'cancelled by CancelJob before it started' });
    }
    return this.store.get(id)!;
  }

  /**
   * Calls `listener` with every stored event after `afterSequence`, then with live ones; returns
   * the unsubscribe function. Replay and subscription happen in one tick, so nothing is missed.
   */
  subscribe(id: string, afterSequence: number, listener: (event: JobEventRecord) => void): () => void {
    let last = afterSequence;
    const deliver = (e: JobEventRecord) => {
      if (e.sequence <= last) return;
      last = e.sequence;
      listener(e);
    };
    const channel = `job:${id}`;
    this.events.on(channel, deliver);
    for (const e of this.store.eventsAfter(id, afterSequence)) deliver(e);
    return () => this.events.off(channel, deliver);
  }

  /** Events after `afterSequence`, then live ones, until the job's final state (or `signal`). */
  async *watch(id: string, afterSequence = 0, signal?: AbortSignal): AsyncGenerator<JobEventRecord> {
    const buffer: JobEventRecord[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe(id, afterSequence, (e) => {
      buffer.push(e);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (buffer.length > 0) {
          const e = buffer.shift()!;
          yield e;
          if (e.type === 'state' && isFinal(e.state)) return;
        }
        // A job that ended before `afterSequence` has nothing more to send.
        const job = this.store.get(id);
        if (!job || (isFinal(job.state) && job.lastSequence <= afterSequence)) return;
        if (signal?.aborted) return;
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
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort('shutdown');
    await Promise.all(runs.map((r) => r.settled));
  }

  private publish(id: string, type: JobEventType, message?: string, epoch?: EpochData): JobEventRecord {
    const event = this.store.appendEvent(id, { type, message, epoch });
    this.events.emit(`job:${id}`, event);
    return event;
  }

  private finish(id: string, state: JobState, o: { error?: string; result?: Record<string, unknown> | null; message?: string } = {}): void {
    const job = this.store.get(id);
    if (!job || isFinal(job.state)) return;
    const message = o.message ?? (state === 'SUCCEEDED' ? 'succeeded' : `${state.toLowerCase()}: ${o.error ?? ''}`);
    this.store.update(id, {
      state,
      finishTime: Date.now(),
      error: o.error ?? '',
      message,
      ...(state === 'SUCCEEDED' ? { progress: 1, result: o.result ?? {} } : {}),
    });
    this.publish(id, 'state', message);
  }

  private pump(): void {
    if (this.closing) return;
    const busy: Record<Resource, number> = { training: 0, cpu: 0 };
    for (const r of this.running.values()) busy[r.resource]++;
    for (const job of this.store.inStates(['QUEUED'])) {
      const spec = this.kinds[job.kind];
      if (!spec) {
        this.finish(job.id, 'FAILED', { error: `this server cannot run jobs of kind ${job.kind}` });
        continue;
      }
      if (busy[spec.resource] >= this.limits[spec.resource]) continue;
      busy[spec.resource]++;
      this.start(job, spec);
    }
  }

  private start(queued: JobRecord, spec: JobKindSpec): void {
    const controller = new AbortController();
    const job = this.store.update(queued.id, { state: 'RUNNING', startTime: queued.startTime ?? Date.now(), message: 'running' });
    this.publish(job.id, 'state', 'running');
    const ctx: JobContext = {
      job,
      signal: controller.signal,
      emit: (e) => {
        // Late events of a cancelled job (a child flushing its pipe) are dropped.
        if (isFinal(this.store.get(job.id)?.state ?? 'FAILED')) return;
        const progress = e.progress === undefined ? undefined : Math.min(1, Math.max(0, e.progress));
        this.store.update(job.id, { progress, message: e.message });
        this.publish(job.id, e.type, e.message, e.epoch);
      },
    };
    const settled = (async () => {
      try {
        const result = await spec.run(job.params, ctx);
        if (controller.signal.aborted && controller.signal.reason === 'shutdown') this.requeue(job.id, spec);
        else this.finish(job.id, 'SUCCEEDED', { result: result ?? {} });
      } catch (err) {
        if (controller.signal.aborted && controller.signal.reason === 'shutdown') this.requeue(job.id, spec);
        else if (err instanceof JobInterrupted) this.requeue(job.id, spec);
        else this.finish(job.id, 'FAILED', { error: (err as Error)?.message ?? String(err) });
      }
    })().finally(() => {
      this.running.delete(job.id);
      this.pump();
    });
    this.running.set(job.id, { controller, settled, resource: spec.resource });
    this.logger?.info({ event: 'job_started', jobId: job.id, kind: job.kind }, `job ${job.id} (${job.kind}) started`);
  }

  /** An interrupted job waits for the next server start (with its resume params, if any). */
  private requeue(id: string, spec: JobKindSpec): void {
    const job = this.store.get(id);
    if (!job || isFinal(job.state)) return;
    if (!spec.resumeParams) return this.finish(id, 'FAILED', { error: 'server stopped while the job ran' });
    this.store.update(id, { state: 'QUEUED', params: spec.resumeParams(job.params), message: 'interrupted: resumes when the server starts again' });
    this.publish(id, 'state', 'interrupted by the server stopping: resumes when it starts again');
  }
}
