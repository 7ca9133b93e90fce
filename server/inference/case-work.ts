// Where the CPU-bound stages of a prediction run: in-line on the calling thread (the CLI, tests,
// NNUNET_PREPROCESS_WORKERS=0) or in a piscina pool of worker threads, so the server's event loop
// keeps answering health checks and other calls while a large case is resampled or exported.
// Typed arrays cross in both directions by transfer; the results are the same bytes either way.
import { DatasetError } from '../dataset/errors.js';
import { ImageFormatError, VolumeTooLargeError } from '../io/errors.js';
import { Piscina } from 'piscina';
import { exportStage, preprocessStage, type ExportTask, type FinishedCase, type PreparedCase, type PreprocessTask } from './case-stages.js';
import { ownedBuffers, type CaseWorkerOutcome, type CaseWorkerTask, type SerializedError } from './case-worker.js';

export interface CaseWork {
  /** Worker threads; 0 when the stages run in-line. */
  readonly threads: number;
  preprocess(task: PreprocessTask, signal?: AbortSignal): Promise<PreparedCase>;
  /** Transfers `task.logits.data` to the worker: the caller must not use it afterwards. */
  export(task: ExportTask, signal?: AbortSignal): Promise<FinishedCase>;
  close(): Promise<void>;
}

/** The stages on the calling thread (the event loop is blocked while each one runs). */
export const inlineCaseWork: CaseWork = {
  threads: 0,
  preprocess: (task) => preprocessStage(task),
  export: async (task) => exportStage(task),
  close: async () => {},
};

/**
 * The worker module: case-worker.js in dist/; from the TypeScript sources (under tsx) a small .mjs
 * entry that loads the .ts worker through tsx, because worker threads do not inherit tsx's loader.
 */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './case-worker.dev.mjs' : './case-worker.js', import.meta.url).href;

/** Idle workers are kept this long, so back-to-back predictions do not pay a thread start each. */
const IDLE_TIMEOUT_MS = 60_000;

const ERROR_CLASSES: Record<string, { prototype: Error }> = { DatasetError, ImageFormatError, VolumeTooLargeError, RangeError, TypeError };

/** Rebuilds an error from a worker with its class and fields, so it maps to the same status code as in-line. */
function reviveError(e: SerializedError): Error {
  const err = Object.create((ERROR_CLASSES[e.name] ?? Error).prototype) as Error;
  return Object.assign(err, e);
}

export class CaseWorkerPool implements CaseWork {
  private readonly pool: Piscina<CaseWorkerTask, CaseWorkerOutcome>;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`a worker pool needs at least one thread, got ${threads}`);
    // Threads start on first use, so a server that never predicts never loads the stages.
    this.pool = new Piscina({ filename: WORKER_URL, minThreads: 0, maxThreads: threads, idleTimeout: IDLE_TIMEOUT_MS });
  }

  private async run<T>(message: CaseWorkerTask, transferList: ArrayBuffer[], signal?: AbortSignal): Promise<T> {
    const outcome = await this.pool.run(message, { transferList, signal });
    if (!outcome.ok) throw reviveError(outcome.error);
    return outcome.result as T;
  }

  preprocess(task: PreprocessTask, signal?: AbortSignal): Promise<PreparedCase> {
    return this.run({ stage: 'preprocess', task }, [], signal);
  }

  export(task: ExportTask, signal?: AbortSignal): Promise<FinishedCase> {
    return this.run({ stage: 'export', task }, ownedBuffers([task.logits.data]), signal);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/** `threads` worker threads, or the in-line stages for 0. */
export function createCaseWork(threads: number): CaseWork {
  return threads === 0 ? inlineCaseWork : new CaseWorkerPool(threads);
}
