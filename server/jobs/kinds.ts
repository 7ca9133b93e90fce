// The job kinds the server runs: train_fold (a child process per fold, via trainFold),
// plan_and_preprocess (the CLI command's own code, run in this process: its heavy parts already
// run in worker threads; it cannot be interrupted, so CancelJob ends the job for its watchers at
// once while the work finishes in the background, still holding its CPU slot, and its result is
// dropped) and find_best_configuration (the same).
// Each maps its stage's progress onto job events.
import { availableParallelism } from 'node:os';
import type { DataRoots } from '../dataset/paths.js';
import { cudaAvailable, torchAvailable } from '../engine/torch.js';
import { findBestConfiguration } from '../evaluation/find-best-configuration.js';
import type { FoldEvent } from '../training/events.js';
import { startFold, type FoldJobOptions } from '../training/run-fold.js';
import type { TrainerOptions } from '../training/trainer-options.js';
import type { GpuSlots } from './gpu-slots.js';
import { JobInterrupted, type JobContext, type JobKindSpec } from './queue.js';

export const KIND_TRAIN_FOLD = 'train_fold';
export const KIND_PLAN_AND_PREPROCESS = 'plan_and_preprocess';
export const KIND_FIND_BEST_CONFIGURATION = 'find_best_configuration';

export interface TrainFoldParams {
  dataset: string;
  configuration: string;
  fold: string;
  trainer?: string;
  plans?: string;
  continueTraining?: boolean;
  saveProbabilities?: boolean;
  device?: 'cpu' | 'cuda';
  numEpochs?: number;
  numIterationsPerEpoch?: number;
  numValIterationsPerEpoch?: number;
  seed?: number;
  validationOnly?: boolean;
  validateWithBest?: boolean;
  disableCheckpointing?: boolean;
}

export interface KindsOptions {
  roots: DataRoots;
  /**
   * Applied to every training (NNUNET_TRAIN_ITERATIONS_PER_EPOCH /
   * NNUNET_TRAIN_VAL_ITERATIONS_PER_EPOCH): smoke tests and demos on small machines.
   */
  trainingOverrides?: Partial<TrainerOptions>;
  /** The CUDA devices trainings are spread over (one per fold child, via CUDA_VISIBLE_DEVICES); none on CPU hosts. */
  gpus?: GpuSlots;
}

/** The data roots of this server as the environment the stages read them from. */
const rootsEnv = (roots: DataRoots): NodeJS.ProcessEnv => ({ ...process.env, nnUNet_raw: roots.raw, nnUNet_preprocessed: roots.preprocessed, nnUNet_results: roots.results });

/**
 * In-process work that cannot be interrupted: a shutdown stops waiting for it (the process is
 * going away); a cancellation keeps waiting, so the job's slot stays taken until the work is done.
 */
function untilShutdown<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      if (signal.reason === 'shutdown') reject(new JobInterrupted());
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** How long a cancelled or interrupted training may take to write checkpoint_latest before it is killed. */
const CANCEL_GRACE_MS = 60_000;

function trainFoldKind(o: KindsOptions): JobKindSpec {
  return {
    resource: 'training',
    // A training interrupted by a crash or a restart goes on from its latest checkpoint (--c).
    resumeParams: (params) => ({ ...params, continueTraining: true }),
    async run(raw, ctx) {
      const p = raw as unknown as TrainFoldParams;
      const overrides: Partial<TrainerOptions> = { ...o.trainingOverrides };
      if (p.numEpochs && p.numEpochs > 0) overrides.numEpochs = p.numEpochs;
      if (p.numIterationsPerEpoch && p.numIterationsPerEpoch > 0) overrides.numIterationsPerEpoch = p.numIterationsPerEpoch;
      if (p.numValIterationsPerEpoch && p.numValIterationsPerEpoch > 0) overrides.numValIterationsPerEpoch = p.numValIterationsPerEpoch;
      const options: FoldJobOptions = {
        dataset: p.dataset,
        configuration: p.configuration,
        fold: p.fold === 'all' ? 'all' : Number(p.fold),
        ...(p.trainer ? { trainer: p.trainer } : {}),
        ...(p.plans ? { plans: p.plans } : {}),
        continueTraining: Boolean(p.continueTraining),
        saveProbabilities: Boolean(p.saveProbabilities),
        validationOnly: Boolean(p.validationOnly),
        validateWithBest: Boolean(p.validateWithBest),
        disableCheckpointing: Boolean(p.disableCheckpointing),
        ...(p.seed !== undefined ? { seed: p.seed } : {}),
        // No device asked for: the GPU when libtorch sees one, as nnUNetv2_train.
        device: p.device ?? (torchAvailable() && cudaAvailable() ? 'cuda' : 'cpu'),
        overrides,
        env: rootsEnv(o.roots),
      };
      // A CUDA training gets a device of its own (the least busy), seen by its child as device 0.
      const gpu = options.device === 'cuda' ? o.gpus?.acquire() : undefined;
      if (gpu) {
        options.env = { ...options.env, CUDA_VISIBLE_DEVICES: gpu.device };
        ctx.emit({ type: 'log', message: `training on GPU ${gpu.device}` });
      }
      let numEpochs = 0;
      const onEvent = (e: FoldEvent) => relayFoldEvent(e, ctx, numEpochs, (n) => (numEpochs = n));
      const run = startFold(options, { onEvent });
      void run.done.finally(() => gpu?.release());
      // Shutdown and CancelJob are graceful stops: the fold finishes its iteration and writes
      // checkpoint_latest (a restart resumes it; after a cancel, TrainFold with continue_training
      // does); a cancelled one is killed if it has not stopped within CANCEL_GRACE_MS. A job another replica
      // took over ('lost') is killed at once: that replica writes the checkpoints now.
      let kill: NodeJS.Timeout | undefined;
      const onAbort = () => {
        if (ctx.signal.reason === 'lost') return run.cancel();
        run.stop();
        if (ctx.signal.reason === 'cancel') kill = setTimeout(() => run.cancel(), CANCEL_GRACE_MS);
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      const outcome = await run.done;
      clearTimeout(kill);
      ctx.signal.removeEventListener('abort', onAbort);
      if (outcome.status === 'finished') return { outputFolder: outcome.outputFolder, meanValidationDice: outcome.meanValidationDice ?? null };
      if (outcome.status === 'stopped') throw new JobInterrupted('the training was stopped; it resumes from checkpoint_latest');
      throw new Error(outcome.message ?? `training ${outcome.status}`);
    },
  };
}

function relayFoldEvent(e: FoldEvent, ctx: JobContext, numEpochs: number, setEpochs: (n: number) => void): void {
  switch (e.type) {
    case 'started':
      setEpochs(e.numEpochs);
      ctx.emit({
        type: 'log',
        message:
          `training ${e.trainer}__${e.plans}__${e.configuration} fold ${e.fold} on ${e.device}: ${e.trainCases} training / ${e.valCases} validation cases, ` +
          `epochs ${e.startEpoch + 1}..${e.numEpochs} of ${e.numEpochs} × ${e.numIterationsPerEpoch} iterations` +
          (e.resumedFrom ? ` (continuing from ${e.resumedFrom})` : '') +
          `\n  -> ${e.outputFolder}`,
        progress: e.numEpochs > 0 ? e.startEpoch / e.numEpochs : 0,
      });
      return;
    case 'epoch':
      ctx.emit({
        type: 'epoch',
        message: `epoch ${e.epoch + 1}/${numEpochs}`,
        progress: numEpochs > 0 ? (e.epoch + 1) / numEpochs : 0,
        epoch: {
          epoch: e.epoch,
          numEpochs,
          trainLoss: e.train_loss,
          valLoss: e.val_loss,
          pseudoDice: e.pseudo_dice,
          emaPseudoDice: e.ema,
          learningRate: e.lr,
          epochSeconds: e.epoch_time,
          newBest: e.new_best,
        },
      });
      return;
    case 'validation':
      if (e.phase === 'started') ctx.emit({ type: 'log', message: `final validation: predicting ${e.cases} case(s) (sliding window, mirroring)` });
      else if (e.phase === 'done') ctx.emit({ type: 'log', message: `validation done: mean Dice ${e.meanDice?.toFixed(4) ?? 'n/a'}` });
      else ctx.emit({ type: 'progress', message: `validation ${e.done ?? 0}/${e.cases}` });
      return;
    case 'checkpoint':
      ctx.emit({ type: 'log', message: `${e.kind} checkpoint written (epoch ${e.epoch})` });
      return;
    case 'log':
      ctx.emit({ type: 'log', message: e.line });
      return;
    default:
      // iteration events are too many to store; finished/stopped/failed end the job instead.
      return;
  }
}

export interface PlanAndPreprocessParams {
  dataset: string;
  configurations?: string[];
  planner?: string;
  gpuMemoryTargetGb?: number;
  numProcesses?: number;
  verifyDatasetIntegrity?: boolean;
}

function planAndPreprocessKind(o: KindsOptions): JobKindSpec {
  return {
    resource: 'cpu',
    async run(raw, ctx) {
      const p = raw as unknown as PlanAndPreprocessParams;
      // Imported lazily: the CLI command pulls in planning and preprocessing, which a server
      // that never plans does not need to load.
      const { planAndPreprocessLocally } = await import('../../client/commands/plan-and-preprocess.js');
      const errors: string[] = [];
      const args: Record<string, unknown> = {
        datasets: [p.dataset],
        planner: p.planner || 'ExperimentPlanner',
        configurations: p.configurations?.length ? p.configurations : ['2d', '3d_fullres', '3d_lowres'],
        npfp: p.numProcesses || Math.min(8, availableParallelism()),
        verify: Boolean(p.verifyDatasetIntegrity),
        clean: false,
        noPp: false,
        verbose: true,
      };
      if (p.gpuMemoryTargetGb) args.gpuMemoryTarget = p.gpuMemoryTargetGb;
      if (p.numProcesses) args.np = [p.numProcesses];
      const io = {
        env: rootsEnv(o.roots),
        stdout: (line: string) => {
          if (!ctx.signal.aborted) ctx.emit({ type: 'log', message: line });
        },
        stderr: (line: string) => {
          errors.push(line);
          if (!ctx.signal.aborted) ctx.emit({ type: 'log', message: line });
        },
      };
      const code = await untilShutdown(planAndPreprocessLocally(args, io), ctx.signal);
      if (code !== 0) throw new Error(errors.slice(-5).join('\n') || `plan_and_preprocess exited with code ${code}`);
      return { dataset: p.dataset, configurations: args.configurations, preprocessedRoot: o.roots.preprocessed };
    },
  };
}

export interface FindBestParams {
  dataset: string;
  configurations?: string[];
  trainer?: string;
  plans?: string;
  folds?: number[];
  disableEnsembling?: boolean;
  /** Several trainers / plans identifiers to compare; `trainer` / `plans` otherwise. */
  trainers?: string[];
  plansIdentifiers?: string[];
  numProcesses?: number;
}

function findBestKind(o: KindsOptions): JobKindSpec {
  return {
    resource: 'cpu',
    async run(raw, ctx) {
      const p = raw as unknown as FindBestParams;
      const r = await untilShutdown(
        findBestConfiguration(p.dataset, {
          ...(p.configurations?.length ? { configurations: p.configurations } : {}),
          trainers: p.trainers?.length ? p.trainers : [p.trainer || 'nnUNetTrainer'],
          plansIdentifiers: p.plansIdentifiers?.length ? p.plansIdentifiers : [p.plans || 'nnUNetPlans'],
          ...(p.numProcesses ? { concurrency: p.numProcesses } : {}),
          ...(p.folds?.length ? { folds: p.folds } : {}),
          allowEnsembling: !p.disableEnsembling,
          env: rootsEnv(o.roots),
          onProgress: (m) => {
            if (!ctx.signal.aborted) ctx.emit({ type: 'log', message: m });
          },
        }),
        ctx.signal,
      );
      return { ...r };
    },
  };
}

export function jobKinds(o: KindsOptions): Record<string, JobKindSpec> {
  return {
    [KIND_TRAIN_FOLD]: trainFoldKind(o),
    [KIND_PLAN_AND_PREPROCESS]: planAndPreprocessKind(o),
    [KIND_FIND_BEST_CONFIGURATION]: findBestKind(o),
  };
}
