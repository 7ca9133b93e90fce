// nnunet.v1.TrainingService and DatasetService.PlanAndPreprocess: thin handlers over the job
// queue (server/jobs). They validate requests, submit jobs and translate job records and events
// into protos. Streams follow a job through JobQueue.watch; a client closing its stream only
// unsubscribes, never cancels (CancelJob does). Admin vs read roles are enforced by the auth
// interceptor (rpc/auth.ts lists the read-only methods).
import * as grpc from '@grpc/grpc-js';
import { isKnownTrainer } from '../training/variants.js';
import {
  JobStateError,
  KIND_FIND_BEST_CONFIGURATION,
  KIND_PLAN_AND_PREPROCESS,
  KIND_TRAIN_FOLD,
  QueueFullError,
  type FindBestParams,
  type JobEventRecord,
  type JobQueue,
  type JobRecord,
  type JobState,
  type PlanAndPreprocessParams,
  type TrainFoldParams,
} from '../jobs/index.js';
import { invalidArgument, notFound, RpcError, toServiceError, unary } from './errors.js';
import { checkDatasetRef, checkFold, checkName } from './validate.js';

const KIND_TO_PROTO: Record<string, string> = {
  [KIND_PLAN_AND_PREPROCESS]: 'JOB_KIND_PLAN_AND_PREPROCESS',
  [KIND_TRAIN_FOLD]: 'JOB_KIND_TRAIN_FOLD',
  [KIND_FIND_BEST_CONFIGURATION]: 'JOB_KIND_FIND_BEST_CONFIGURATION',
  install_model: 'JOB_KIND_INSTALL_MODEL',
};
const PROTO_TO_KIND = Object.fromEntries(Object.entries(KIND_TO_PROTO).map(([k, v]) => [v, k]));
const EVENT_TYPES = { state: 'JOB_EVENT_TYPE_STATE', progress: 'JOB_EVENT_TYPE_PROGRESS', epoch: 'JOB_EVENT_TYPE_EPOCH', log: 'JOB_EVENT_TYPE_LOG' } as const;
const STATES: JobState[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

const timestamp = (ms: number | null) => (ms === null ? null : { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

export function jobToProto(j: JobRecord) {
  return {
    id: j.id,
    kind: KIND_TO_PROTO[j.kind] ?? 'JOB_KIND_UNSPECIFIED',
    state: `JOB_STATE_${j.state}`,
    progress: j.progress,
    create_time: timestamp(j.createTime),
    start_time: timestamp(j.startTime),
    finish_time: timestamp(j.finishTime),
    error: j.error,
    params_json: JSON.stringify(j.params),
    result_json: j.result ? JSON.stringify(j.result) : '',
    message: j.message,
  };
}

export function eventToProto(e: JobEventRecord) {
  return {
    job_id: e.jobId,
    sequence: e.sequence,
    time: timestamp(e.time),
    type: EVENT_TYPES[e.type],
    message: e.message,
    progress: e.progress,
    state: `JOB_STATE_${e.state}`,
    epoch: e.epoch
      ? {
          epoch: e.epoch.epoch,
          num_epochs: e.epoch.numEpochs,
          train_loss: e.epoch.trainLoss,
          val_loss: e.epoch.valLoss,
          // NaN (a class absent from every validation patch) is a valid double on the wire.
          pseudo_dice: e.epoch.pseudoDice.map((d) => (d === null ? NaN : d)),
          ema_pseudo_dice: e.epoch.emaPseudoDice ?? NaN,
          learning_rate: e.epoch.learningRate,
          epoch_seconds: e.epoch.epochSeconds,
          new_best: e.epoch.newBest,
        }
      : null,
  };
}

/** Queue errors as statuses: a full queue is RESOURCE_EXHAUSTED with a retry hint. */
async function submit(queue: JobQueue, kind: string, params: Record<string, unknown>): Promise<JobRecord> {
  try {
    return await queue.submit(kind, params);
  } catch (err) {
    if (err instanceof QueueFullError) throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, err.message, undefined, err.retryAfterMs);
    if (err instanceof JobStateError) throw new RpcError(grpc.status.UNAVAILABLE, err.message, undefined, 5_000);
    throw err;
  }
}

async function existingJob(queue: JobQueue, id: unknown): Promise<JobRecord> {
  if (typeof id !== 'string' || id.length === 0) throw invalidArgument('job_id', 'job_id is required');
  const job = await queue.get(id);
  if (!job) throw notFound(`no job ${id} on this server`);
  return job;
}

/** Writes a job's events to a server stream until it ends, the client leaves, or `stopAfterFirst`. */
async function streamEvents(queue: JobQueue, call: grpc.ServerWritableStream<unknown, unknown>, jobId: string, afterSequence: number, stopAfterFirst = false): Promise<void> {
  const gone = new AbortController();
  // The client leaving only ends this watcher; the job keeps running.
  const onCancelled = () => gone.abort();
  call.once('cancelled', onCancelled);
  try {
    for await (const e of queue.watch(jobId, afterSequence, gone.signal)) {
      if (call.cancelled) return;
      if (!call.write({ event: eventToProto(e) })) {
        // A slow reader: wait for its buffer to empty, or for it to leave.
        await new Promise<void>((resolve) => {
          const done = () => {
            call.removeListener('drain', done);
            gone.signal.removeEventListener('abort', done);
            resolve();
          };
          call.once('drain', done);
          gone.signal.addEventListener('abort', done, { once: true });
        });
      }
      if (stopAfterFirst) break;
    }
    if (!call.cancelled) call.end();
  } finally {
    call.removeListener('cancelled', onCancelled);
  }
}

function serverStreaming(fn: (call: grpc.ServerWritableStream<unknown, unknown>) => Promise<void>): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    fn(call).catch((err) => {
      if (!call.cancelled) call.emit('error', toServiceError(err));
    });
  };
}

const optionalName = (field: string, v: unknown, what: string) => (v === undefined || v === '' ? undefined : checkName(field, v, what));

/** FindBestConfiguration's lists of trainers and plans (either these or the single fields) and its worker count. */
function findBestLists(r: { trainer?: string; plans?: string; trainers?: string[]; plans_identifiers?: string[]; num_processes?: number }): Pick<FindBestParams, 'trainers' | 'plansIdentifiers' | 'numProcesses'> {
  const trainers = (r.trainers ?? []).map((t, i) => checkName(`trainers[${i}]`, t, 'trainer'));
  const plans = (r.plans_identifiers ?? []).map((p, i) => checkName(`plans_identifiers[${i}]`, p, 'plans identifier'));
  if (trainers.length > 0 && r.trainer) throw invalidArgument('trainers', 'give trainer or trainers, not both');
  if (plans.length > 0 && r.plans) throw invalidArgument('plans_identifiers', 'give plans or plans_identifiers, not both');
  const numProcesses = Number(r.num_processes ?? 0);
  if (!Number.isInteger(numProcesses) || numProcesses < 0) throw invalidArgument('num_processes', 'must be a non-negative integer');
  return { ...(trainers.length ? { trainers } : {}), ...(plans.length ? { plansIdentifiers: plans } : {}), ...(numProcesses > 0 ? { numProcesses } : {}) };
}

function trainFoldParams(r: Record<string, unknown>): TrainFoldParams {
  const trainer = optionalName('trainer', r.trainer, 'trainer');
  // Trainer modules (paths) run arbitrary code; over the API only the built-in variants are allowed.
  if (trainer && !isKnownTrainer(trainer)) throw invalidArgument('trainer', `unknown trainer ${trainer}; use a built-in one (e.g. nnUNetTrainer, nnUNetTrainer_5epochs)`);
  const device = r.device === undefined || r.device === '' ? undefined : r.device;
  if (device !== undefined && device !== 'cpu' && device !== 'cuda') throw invalidArgument('device', 'must be "cpu", "cuda" or empty');
  const count = (field: string) => {
    const n = Number(r[field] ?? 0);
    if (!Number.isInteger(n) || n < 0) throw invalidArgument(field, 'must be a non-negative integer');
    return n;
  };
  const numEpochs = count('num_epochs');
  const numIterationsPerEpoch = count('num_iterations_per_epoch');
  const numValIterationsPerEpoch = count('num_val_iterations_per_epoch');
  const seed = r.seed === undefined || r.seed === null ? undefined : Number(r.seed);
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) throw invalidArgument('seed', 'must be a non-negative integer');
  return {
    dataset: checkDatasetRef('dataset', r.dataset),
    configuration: checkName('configuration', r.configuration, 'configuration'),
    fold: checkFold('fold', r.fold),
    ...(trainer ? { trainer } : {}),
    ...(optionalName('plans', r.plans, 'plans identifier') ? { plans: r.plans as string } : {}),
    continueTraining: Boolean(r.continue_training),
    saveProbabilities: Boolean(r.export_validation_probabilities),
    ...(device ? { device } : {}),
    ...(numEpochs > 0 ? { numEpochs } : {}),
    ...(numIterationsPerEpoch > 0 ? { numIterationsPerEpoch } : {}),
    ...(numValIterationsPerEpoch > 0 ? { numValIterationsPerEpoch } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(r.validation_only ? { validationOnly: true } : {}),
    ...(r.validate_with_best ? { validateWithBest: true } : {}),
    ...(r.disable_checkpointing ? { disableCheckpointing: true } : {}),
  };
}

export interface JobHooks {
  trainingService: grpc.UntypedServiceImplementation;
  planAndPreprocess: grpc.handleUnaryCall<unknown, unknown>;
  /** The job store's named lock: dataset.json writers exclude each other across replicas. */
  datasetLock: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
}

export function jobHooks(queue: JobQueue): JobHooks {
  const trainingService: grpc.UntypedServiceImplementation = {
    TrainFold: serverStreaming(async (call) => {
      const r = call.request as Record<string, unknown>;
      const job = await submit(queue, KIND_TRAIN_FOLD, trainFoldParams(r) as unknown as Record<string, unknown>);
      await streamEvents(queue, call, job.id, 0, Boolean(r.detach));
    }),
    WatchJob: serverStreaming(async (call) => {
      const r = call.request as { job_id?: string; after_sequence?: number };
      const job = await existingJob(queue, r.job_id);
      const after = Number(r.after_sequence ?? 0);
      if (!Number.isSafeInteger(after) || after < 0) throw invalidArgument('after_sequence', 'must be 0 or a sequence number');
      await streamEvents(queue, call, job.id, after);
    }),
    CancelJob: unary(async (r: { job_id?: string }) => {
      const job = await existingJob(queue, r.job_id);
      try {
        return { job: jobToProto(await queue.cancel(job.id)) };
      } catch (err) {
        if (err instanceof JobStateError) throw new RpcError(grpc.status.FAILED_PRECONDITION, err.message, 'job_id');
        throw err;
      }
    }),
    GetJob: unary(async (r: { job_id?: string }) => ({ job: jobToProto(await existingJob(queue, r.job_id)) })),
    ListJobs: unary(async (r: { kind?: string; state?: string; page_size?: number; page_token?: string }) => {
      const kind = r.kind && r.kind !== 'JOB_KIND_UNSPECIFIED' ? PROTO_TO_KIND[r.kind] : undefined;
      const stateName = r.state && r.state !== 'JOB_STATE_UNSPECIFIED' ? r.state.replace(/^JOB_STATE_/, '') : undefined;
      const state = STATES.find((s) => s === stateName);
      const size = Number(r.page_size ?? 0);
      if (!Number.isInteger(size) || size < 0) throw invalidArgument('page_size', 'must be a non-negative integer');
      let before: number | undefined;
      if (r.page_token) {
        before = Number(r.page_token);
        if (!Number.isSafeInteger(before) || before < 1) throw invalidArgument('page_token', 'not a token from ListJobs');
      }
      const page = await queue.store.list({ kind, state, limit: Math.min(size || DEFAULT_PAGE, MAX_PAGE), before });
      return { jobs: page.jobs.map(jobToProto), next_page_token: page.cursor === undefined ? '' : String(page.cursor) };
    }),
    FindBestConfiguration: unary(async (r: { dataset?: string; configurations?: string[]; trainer?: string; plans?: string; folds?: string[]; disable_ensembling?: boolean; trainers?: string[]; plans_identifiers?: string[]; num_processes?: number }) => {
      const folds = (r.folds ?? []).map((f, i) => {
        const v = checkFold(`folds[${i}]`, f);
        if (v === 'all') throw invalidArgument(`folds[${i}]`, 'cross-validation compares numbered folds');
        return Number(v);
      });
      const params: FindBestParams = {
        dataset: checkDatasetRef('dataset', r.dataset),
        configurations: (r.configurations ?? []).map((c, i) => checkName(`configurations[${i}]`, c, 'configuration')),
        ...(optionalName('trainer', r.trainer, 'trainer') ? { trainer: r.trainer } : {}),
        ...(optionalName('plans', r.plans, 'plans identifier') ? { plans: r.plans } : {}),
        folds,
        disableEnsembling: Boolean(r.disable_ensembling),
        ...findBestLists(r),
      };
      return { job: jobToProto(await submit(queue, KIND_FIND_BEST_CONFIGURATION, params as unknown as Record<string, unknown>)) };
    }),
  };
  const planAndPreprocess = unary(
    async (r: { dataset?: string; configurations?: string[]; planner?: string; gpu_memory_target_gb?: number; num_processes?: number; verify_dataset_integrity?: boolean }) => {
      const numProcesses = Number(r.num_processes ?? 0);
      if (!Number.isInteger(numProcesses) || numProcesses < 0) throw invalidArgument('num_processes', 'must be a non-negative integer');
      const gpu = Number(r.gpu_memory_target_gb ?? 0);
      if (!Number.isFinite(gpu) || gpu < 0) throw invalidArgument('gpu_memory_target_gb', 'must be 0 or a positive number of GB');
      const params: PlanAndPreprocessParams = {
        dataset: checkDatasetRef('dataset', r.dataset),
        configurations: (r.configurations ?? []).map((c, i) => checkName(`configurations[${i}]`, c, 'configuration')),
        ...(optionalName('planner', r.planner, 'planner') ? { planner: r.planner } : {}),
        ...(gpu > 0 ? { gpuMemoryTargetGb: gpu } : {}),
        ...(numProcesses > 0 ? { numProcesses } : {}),
        verifyDatasetIntegrity: Boolean(r.verify_dataset_integrity),
      };
      return { job: jobToProto(await submit(queue, KIND_PLAN_AND_PREPROCESS, params as unknown as Record<string, unknown>)) };
    },
  ) as grpc.handleUnaryCall<unknown, unknown>;
  return { trainingService, planAndPreprocess, datasetLock: (key, fn) => queue.store.lock(key, fn) };
}
