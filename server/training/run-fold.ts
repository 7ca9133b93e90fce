// The parent's side of a training fold (DESIGN.md "Processes"): forks fold-process in its own
// process, relays its events, and turns every way it can end — finished, gracefully stopped,
// failed with an error, crashed or killed (exit code / signal, with the end of its stderr),
// cancelled — into one FoldOutcome. The parent never throws because a fold died.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FoldEvent } from './events.js';
import type { FoldJobOptions } from './fold-job.js';

export type { FoldJobOptions } from './fold-job.js';

export interface FoldHooks {
  onEvent?: (event: FoldEvent) => void;
  /** The child's stderr as it comes (libtorch warnings, a crash's last words). */
  onStderr?: (text: string) => void;
  /** Aborting cancels the fold (the child is killed; no checkpoint is written). */
  signal?: AbortSignal;
}

export interface FoldOutcome {
  status: 'finished' | 'stopped' | 'failed' | 'cancelled';
  /** Why it failed or was cancelled. */
  message?: string;
  /** The error's class in the child (DatasetError, UnknownTrainerError, ...), when it caught one. */
  errorName?: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  outputFolder?: string;
  meanValidationDice?: number | null;
}

const IS_TS = import.meta.url.endsWith('.ts');
const CHILD = fileURLToPath(new URL(`./fold-process.${IS_TS ? 'ts' : 'js'}`, import.meta.url));
const STDERR_TAIL = 4000;

/** The tsx loader as an absolute URL, so the child finds it whatever its working directory. */
function tsxImport(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

/** The child runs the TypeScript sources under tsx (tests, development) and dist/ .js as is. */
function childExecArgv(options: FoldJobOptions): string[] {
  const tsTrainer = typeof options.trainer === 'string' && /\.m?ts$/.test(options.trainer);
  const tsPipeline = typeof options.batchSourceModule === 'string' && /\.m?ts$/.test(options.batchSourceModule);
  return IS_TS || tsTrainer || tsPipeline ? ['--import', tsxImport()] : [];
}

export interface FoldRun {
  readonly pid: number | undefined;
  /** Settles with the outcome; never rejects. */
  readonly done: Promise<FoldOutcome>;
  /** Graceful stop: the child finishes the current iteration, writes checkpoint_latest and exits. */
  stop(): void;
  /** Cancellation: kills the child at once (nothing more is written). */
  cancel(): void;
}

/** Starts a fold in a child process; `done` settles with its outcome (never rejects). */
export function startFold(options: FoldJobOptions, hooks: FoldHooks = {}): FoldRun {
  const child = fork(CHILD, [], {
    execArgv: childExecArgv(options),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // NaN pseudo Dice and typed data survive structured clone; JSON would turn NaN into null.
    serialization: 'advanced',
    env: { ...process.env, ...(options.env ?? {}) },
  });
  let cancelled = false;
  const alive = () => child.exitCode === null && child.signalCode === null;
  const cancel = () => {
    cancelled = true;
    if (alive()) child.kill('SIGKILL');
  };
  let stderr = '';
  let terminal: FoldEvent | null = null;
  let spawnError: Error | null = null;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL);
    hooks.onStderr?.(text);
  });
  child.stdout?.resume(); // nothing is expected there; keep the pipe from filling up
  child.on('message', (event: FoldEvent) => {
    if (event.type === 'finished' || event.type === 'stopped' || event.type === 'failed') terminal = event;
    hooks.onEvent?.(event);
  });
  child.on('error', (err) => {
    spawnError = err;
  });
  const onAbort = () => cancel();
  if (hooks.signal?.aborted) onAbort();
  else hooks.signal?.addEventListener('abort', onAbort, { once: true });

  const done = new Promise<FoldOutcome>((resolve) => {
    child.on('close', (exitCode, signal) => {
      hooks.signal?.removeEventListener('abort', onAbort);
      const base = { exitCode, signal };
      const t = terminal as FoldEvent | null;
      if (t?.type === 'finished') return resolve({ ...base, status: 'finished', outputFolder: t.outputFolder, meanValidationDice: t.meanValidationDice });
      if (t?.type === 'stopped') return resolve({ ...base, status: 'stopped' });
      if (cancelled) return resolve({ ...base, status: 'cancelled', message: 'the fold was cancelled (its process was killed)' });
      const outcome: FoldOutcome =
        t?.type === 'failed'
          ? { ...base, status: 'failed', message: t.message, errorName: t.errorName }
          : { ...base, status: 'failed', message: crashMessage(exitCode, signal, spawnError, stderr) };
      if (t?.type !== 'failed') hooks.onEvent?.({ type: 'failed', message: outcome.message as string, exitCode, signal });
      resolve(outcome);
    });
  });
  child.send({ type: 'start', options });
  return {
    pid: child.pid,
    done,
    stop: () => {
      if (alive()) child.kill('SIGTERM');
    },
    cancel,
  };
}

function crashMessage(code: number | null, signal: NodeJS.Signals | null, spawnError: Error | null, stderr: string): string {
  if (spawnError) return `the fold process could not be started: ${spawnError.message}`;
  const how = signal ? `was killed by signal ${signal}` : `exited with code ${code} without reporting a result`;
  const tail = stderr.trim().split('\n').slice(-12).join('\n');
  return `the fold process ${how}${tail ? `; its last output:\n${tail}` : ''}`;
}

/** Runs a fold in a child process to its end. */
export function trainFold(options: FoldJobOptions, hooks: FoldHooks = {}): Promise<FoldOutcome> {
  return startFold(options, hooks).done;
}
