// The jobs module as the server uses it: opens the store (PostgreSQL when NNUNET_DATABASE_URL
// names one, for several replicas; else SQLite in <NNUNET_HOME>/jobs.sqlite, next to the data roots
// unless NNUNET_JOBS_DB says otherwise), builds the queue with this server's job kinds, limits and
// lease from the environment, and recovers jobs a dead server (or replica) left RUNNING.
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { trainingConcurrency } from '../config.js';
import type { DataRoots } from '../dataset/paths.js';
import { cudaDevices } from '../devices.js';
import type { TrainerOptions } from '../training/trainer-options.js';
import { GpuSlots, visibleDeviceIds } from './gpu-slots.js';
import { jobKinds } from './kinds.js';
import { JobQueue } from './queue.js';
import { PostgresJobStore } from './postgres-store.js';
import { SqliteJobStore, type JobStore } from './store.js';

export * from './kinds.js';
export * from './postgres-store.js';
export * from './queue.js';
export * from './store.js';

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** Where the job store lives: NNUNET_JOBS_DB, else NNUNET_HOME/jobs.sqlite, else beside the raw root. */
export function jobsDatabasePath(env: NodeJS.ProcessEnv, roots: DataRoots): string {
  if (env.NNUNET_JOBS_DB) return resolve(env.NNUNET_JOBS_DB);
  if (env.NNUNET_HOME) return join(resolve(env.NNUNET_HOME), 'jobs.sqlite');
  return join(dirname(roots.raw), 'jobs.sqlite');
}

/** The job store the environment asks for: PostgreSQL for NNUNET_DATABASE_URL=postgres://…, else SQLite. */
export async function openJobStore(roots: DataRoots, logger?: Logger, env: NodeJS.ProcessEnv = process.env): Promise<JobStore> {
  const url = env.NNUNET_DATABASE_URL;
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new Error(`NNUNET_DATABASE_URL must be a postgres:// or postgresql:// URL, got ${JSON.stringify(url.split(':')[0] + ':…')}`);
    return PostgresJobStore.open(url, { logger, poolSize: positiveInt(env, 'NNUNET_DATABASE_POOL_SIZE', 10) });
  }
  return new SqliteJobStore(jobsDatabasePath(env, roots));
}

export async function openJobQueue(roots: DataRoots, logger?: Logger, env: NodeJS.ProcessEnv = process.env): Promise<JobQueue> {
  const trainingOverrides: Partial<TrainerOptions> = {};
  if (env.NNUNET_TRAIN_ITERATIONS_PER_EPOCH) trainingOverrides.numIterationsPerEpoch = positiveInt(env, 'NNUNET_TRAIN_ITERATIONS_PER_EPOCH', 250);
  if (env.NNUNET_TRAIN_VAL_ITERATIONS_PER_EPOCH) trainingOverrides.numValIterationsPerEpoch = positiveInt(env, 'NNUNET_TRAIN_VAL_ITERATIONS_PER_EPOCH', 50);
  const store = await openJobStore(roots, logger, env);
  const cuda = cudaDevices().count;
  const gpus = cuda > 0 ? new GpuSlots(visibleDeviceIds(cuda, env)) : undefined;
  const queue = new JobQueue(store, jobKinds({ roots, trainingOverrides, gpus }), {
    // One training per CUDA device libtorch sees, NNUNET_CPU_TRAININGS on CPU (config.ts trainingConcurrency).
    limits: { training: trainingConcurrency(env, cuda), cpu: positiveInt(env, 'NNUNET_MAX_CPU_JOBS', 1) },
    maxQueued: positiveInt(env, 'NNUNET_MAX_QUEUED_JOBS', 100),
    logger,
    ...(env.NNUNET_REPLICA_ID ? { replicaId: env.NNUNET_REPLICA_ID } : {}),
    leaseMs: positiveInt(env, 'NNUNET_JOB_LEASE_MS', 30_000),
  });
  try {
    await queue.recover();
  } catch (err) {
    await store.close();
    throw err;
  }
  return queue;
}
