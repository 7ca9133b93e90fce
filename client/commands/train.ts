// `nnunet train DATASET CONFIG FOLD`: nnU-Net v2's nnUNetv2_train with its positional arguments and
// flags (-tr, -p, --c, --val, --val_best, --npz, -pretrained_weights, -device, --disable_checkpointing)
// plus loop-length overrides. The fold is a TrainFold job of the server (embedded or named with
// --server), which runs it in its own child process; this command streams the job's events: a
// progress bar over the epochs on a terminal, epoch lines otherwise. Ctrl-C once: with the embedded
// server the fold stops after the current iteration and writes checkpoint_latest (continue with
// --c), a second Ctrl-C exits without waiting for it; with a named server the job is cancelled
// (CancelJob stops the fold after its current iteration and writes checkpoint_latest), a second
// Ctrl-C stops waiting.
//
// A trainer module (-tr path/to/trainer.ts) and -pretrained_weights FILE are files of this
// machine, and a module is code: the server only runs its built-in trainers and reads no client
// paths. Without --server such a fold runs locally in a child process of this command (trainLocally);
// with --server they are refused.
import cliProgress from 'cli-progress';
import { cudaAvailable, torchAvailable } from '../../server/engine/torch.js';
import type { EpochEvent, FoldEvent } from '../../server/training/events.js';
import { startFold, type FoldJobOptions } from '../../server/training/run-fold.js';
import type { TrainerOptions } from '../../server/training/trainer-options.js';
import { isKnownTrainer, looksLikeTrainerModule, UnknownTrainerError } from '../../server/training/variants.js';
import { UsageError, type ParsedArgs } from '../args.js';
import { serverTarget, SERVER_OPTIONS, withConnection, type Connection } from '../connection.js';
import type { EpochSummary, JobEvent, TrainFoldRequest } from '../sdk/index.js';
import { isTty } from '../progress.js';
import { jobResult } from './jobs.js';
import { EXIT, type Command, type CommandIO } from './types.js';

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x).toLowerCase());
const lrText = (lr: number) => (lr >= 1e-3 ? lr.toFixed(5) : lr.toExponential(2));

export function epochLine(e: EpochEvent, numEpochs: number): string {
  const dice = `[${e.pseudo_dice.map((d) => fmt(d)).join(', ')}]`;
  return (
    `epoch ${e.epoch + 1}/${numEpochs}: train_loss ${fmt(e.train_loss)}  val_loss ${fmt(e.val_loss)}  pseudo dice ${dice}  ` +
    `ema ${fmt(e.ema)}  lr ${lrText(e.lr)}  ${e.epoch_time.toFixed(1)} s${e.new_best ? '  (new best)' : ''}`
  );
}

function parseFold(value: unknown): number | 'all' {
  const s = String(value);
  if (s === 'all') return 'all';
  if (!/^\d+$/.test(s)) throw new UsageError(`FOLD must be 0, 1, 2, ... or "all", got '${s}'`, 'train');
  return Number(s);
}

function overrides(args: ParsedArgs): Partial<TrainerOptions> {
  const o: Partial<TrainerOptions> = {};
  const positive = (key: string, flag: string): number | undefined => {
    const v = args[key] as number | undefined;
    if (v !== undefined && v < 1) throw new UsageError(`${flag} must be at least 1, got ${v}`, 'train');
    return v;
  };
  const epochs = positive('numEpochs', '--num_epochs');
  const iterations = positive('numIterations', '--num_iterations_per_epoch');
  const valIterations = positive('numValIterations', '--num_val_iterations_per_epoch');
  if (epochs !== undefined) o.numEpochs = epochs;
  if (iterations !== undefined) o.numIterationsPerEpoch = iterations;
  if (valIterations !== undefined) o.numValIterationsPerEpoch = valIterations;
  return o;
}

/** An EpochSummary of the server as the fold's own epoch event, for epochLine. */
function epochEvent(e: EpochSummary): EpochEvent {
  return {
    type: 'epoch',
    epoch: e.epoch,
    train_loss: e.train_loss,
    val_loss: e.val_loss,
    pseudo_dice: e.pseudo_dice,
    mean_fg_dice: NaN,
    ema: e.ema_pseudo_dice,
    lr: e.learning_rate,
    epoch_time: e.epoch_seconds,
    data_wait_time: NaN,
    train_step_time: NaN,
    new_best: e.new_best,
  };
}

/** Job log lines shown without --verbose: what the local fold printed (the rest is nnU-Net's training log). */
const SHOWN_LOG = /^(training |final validation:)/;

/** Renders a TrainFold job's events: a bar over the epochs on a terminal, lines otherwise. */
function jobView(io: CommandIO, verbose: boolean, tty: boolean) {
  let bar: cliProgress.SingleBar | undefined;
  let status = 'starting';
  const withoutBar = (print: () => void) => {
    const value = bar ? bar.getProgress() * 100 : undefined;
    bar?.stop();
    print();
    if (bar && value !== undefined) bar.start(100, value, { status });
  };
  return {
    stopBar() {
      bar?.stop();
      bar = undefined;
    },
    onEvent(e: JobEvent): void {
      if (tty && !bar && e.state === 'JOB_STATE_RUNNING') {
        bar = new cliProgress.SingleBar({ format: 'training {bar} {percentage}% | {status}', hideCursor: true }, cliProgress.Presets.shades_classic);
        bar.start(100, Math.round(e.progress * 100), { status });
      }
      switch (e.type) {
        case 'JOB_EVENT_TYPE_EPOCH':
          if (!e.epoch) break;
          status = `epoch ${e.epoch.epoch + 1}/${e.epoch.num_epochs} done, ema ${e.epoch.ema_pseudo_dice.toFixed(4)}`;
          withoutBar(() => io.stdout(epochLine(epochEvent(e.epoch!), e.epoch!.num_epochs)));
          bar?.update(Math.round(e.progress * 100), { status });
          break;
        case 'JOB_EVENT_TYPE_LOG':
          if (verbose || SHOWN_LOG.test(e.message)) withoutBar(() => io.stdout(e.message));
          break;
        case 'JOB_EVENT_TYPE_PROGRESS':
          status = e.message;
          bar?.update(Math.round(e.progress * 100), { status });
          break;
        default:
          if (e.state === 'JOB_STATE_QUEUED' && e.sequence === 1) withoutBar(() => io.stderr(`job ${e.job_id} queued`));
          break;
      }
    },
  };
}

/** Renders the fold's events: a bar per epoch on a terminal, lines otherwise. */
function progressView(io: CommandIO, verbose: boolean, tty: boolean) {
  let numEpochs = 0;
  let bar: cliProgress.SingleBar | undefined;
  let barEpoch = -1;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    stopBar,
    onEvent(e: FoldEvent): void {
      switch (e.type) {
        case 'started':
          numEpochs = e.numEpochs;
          io.stdout(
            `training ${e.trainer}__${e.plans}__${e.configuration} fold ${e.fold} on ${e.device}: ${e.trainCases} training / ${e.valCases} validation cases, ` +
              `epochs ${e.startEpoch + 1}..${e.numEpochs} of ${e.numEpochs} × ${e.numIterationsPerEpoch} iterations` +
              (e.resumedFrom ? ` (continuing from ${e.resumedFrom})` : '') +
              `\n  -> ${e.outputFolder}`,
          );
          break;
        case 'iteration':
          if (!tty) break;
          if (e.phase === 'train' && e.epoch !== barEpoch) {
            stopBar();
            barEpoch = e.epoch;
            bar = new cliProgress.SingleBar({ format: `epoch ${e.epoch + 1}/${numEpochs} {bar} {value}/{total} {phase}`, hideCursor: true }, cliProgress.Presets.shades_classic);
            bar.start(e.total, 0, { phase: 'train' });
          }
          if (e.phase === 'train') bar?.update(e.iteration, { phase: 'train' });
          else bar?.update(bar.getTotal(), { phase: `validation ${e.iteration}/${e.total}` });
          break;
        case 'epoch':
          stopBar();
          io.stdout(epochLine(e, numEpochs));
          break;
        case 'validation':
          if (e.phase === 'started') io.stdout(`final validation: predicting ${e.cases} case(s) (sliding window, mirroring)`);
          if (e.phase === 'done') io.stdout(`Mean Validation Dice: ${e.meanDice} (${e.summaryFile})`);
          break;
        case 'stopped':
          stopBar();
          io.stdout(`stopped before epoch ${e.epoch + 1}; ${e.checkpoint ? `${e.checkpoint} written, ` : ''}continue with --c`);
          break;
        case 'log':
          if (verbose) {
            stopBar();
            io.stdout(e.line);
          }
          break;
        default:
          break;
      }
    },
  };
}

/**
 * A fold with a trainer module or pretrained weights from this machine, in a child process of this
 * command (no server): the same fold process the server's job runs.
 */
async function trainLocally(args: ParsedArgs, io: CommandIO, fold: number | 'all', trainer: string, loop: Partial<TrainerOptions>): Promise<number> {
  if (!torchAvailable()) {
    io.stderr('nnunet train: error: training needs libtorch: install it (Debian: apt install libtorch-dev, or set LIBTORCH_DIR) and run npm run build:native');
    return EXIT.failed;
  }
  const device = (args.device as 'cpu' | 'cuda' | undefined) ?? (cudaAvailable() ? 'cuda' : 'cpu');
  const options: FoldJobOptions = {
    dataset: String(args.dataset),
    configuration: String(args.configuration),
    fold,
    trainer,
    plans: String(args.plans),
    continueTraining: Boolean(args.continue),
    validationOnly: Boolean(args.val),
    validateWithBest: Boolean(args.valBest),
    saveProbabilities: Boolean(args.npz),
    disableCheckpointing: Boolean(args.disableCheckpointing),
    device,
    overrides: loop,
    env: io.env,
    ...(args.pretrained !== undefined ? { pretrainedWeights: String(args.pretrained) } : {}),
    ...(args.seed !== undefined ? { seed: args.seed as number } : {}),
  };
  const tty = Boolean(process.stderr.isTTY);
  const view = progressView(io, Boolean(args.verbose), tty);
  const run = startFold(options, { onEvent: (e) => view.onEvent(e), onStderr: args.verbose ? (t) => io.stderr(t.trimEnd()) : undefined });
  let interrupts = 0;
  const onSigint = () => {
    view.stopBar();
    if (++interrupts === 1) {
      io.stderr('stopping after the current iteration (checkpoint_latest will be written); press Ctrl-C again to kill the fold');
      run.stop();
    } else {
      run.cancel();
    }
  };
  process.on('SIGINT', onSigint);
  try {
    const outcome = await run.done;
    view.stopBar();
    if (outcome.status === 'finished') {
      io.stdout(`fold ${fold} finished: ${outcome.outputFolder}`);
      return EXIT.ok;
    }
    if (outcome.status === 'stopped') return EXIT.ok;
    io.stderr(`nnunet train: error: ${outcome.message}`);
    return EXIT.failed;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export const trainCommand: Command = {
  spec: {
    name: 'train',
    summary: 'train one fold of a configuration (nnUNetv2_train)',
    description:
      'Trains fold FOLD of configuration CONFIG of a preprocessed dataset in its own process and writes ' +
      'nnUNet_results/DatasetXXX_Name/<Trainer>__<Plans>__<CONFIG>/fold_FOLD/ (checkpoints, model.onnx, progress.png, ' +
      'training logs, validation/ with summary.json). -tr takes an nnU-Net trainer name (nnUNetTrainer_250epochs, ' +
      'nnUNetTrainerNoMirroring, ...) or the path of a trainer module (server/training/README.md). Ctrl-C stops after ' +
      'the current iteration and writes checkpoint_latest; a second Ctrl-C stops waiting for it.',
    positionals: [
      { dest: 'dataset', help: 'dataset id (e.g. 4) or name (Dataset004_Hippocampus)' },
      { dest: 'configuration', help: 'configuration, e.g. 3d_fullres' },
      { dest: 'fold', help: 'fold of the 5-fold cross-validation (0..4), or "all"' },
    ],
    options: [
      { flags: ['-tr'], dest: 'trainer', default: 'nnUNetTrainer', help: 'trainer name or trainer module path', metavar: 'TRAINER' },
      { flags: ['-p'], dest: 'plans', default: 'nnUNetPlans', help: 'plans identifier', metavar: 'PLANS' },
      { flags: ['-pretrained_weights'], dest: 'pretrained', help: 'initialise from a checkpoint (nnU-Net .pth or ours); all but the segmentation heads must fit', metavar: 'FILE' },
      { flags: ['-num_gpus'], dest: 'numGpus', type: 'int', default: 1, help: 'only 1 is supported (no multi-GPU training yet)' },
      { flags: ['-device'], dest: 'device', choices: ['cpu', 'cuda'], help: 'training device (default: cuda when libtorch sees a GPU, else cpu)' },
      { flags: ['--c'], dest: 'continue', type: 'flag', help: 'continue from checkpoint_final, checkpoint_latest or checkpoint_best' },
      { flags: ['--val'], dest: 'val', type: 'flag', help: 'only run the final validation (needs checkpoint_final)' },
      { flags: ['--val_best'], dest: 'valBest', type: 'flag', help: 'validate with checkpoint_best instead of the final weights' },
      { flags: ['--npz'], dest: 'npz', type: 'flag', help: 'save the validation probabilities (CASE.npz)' },
      { flags: ['--disable_checkpointing'], dest: 'disableCheckpointing', type: 'flag', help: 'write no checkpoints (testing only)' },
      { flags: ['--num_epochs'], dest: 'numEpochs', type: 'int', help: "override the trainer's number of epochs", metavar: 'N' },
      { flags: ['--num_iterations_per_epoch'], dest: 'numIterations', type: 'int', help: 'override the training iterations per epoch', metavar: 'N' },
      { flags: ['--num_val_iterations_per_epoch'], dest: 'numValIterations', type: 'int', help: 'override the online validation iterations per epoch', metavar: 'N' },
      { flags: ['--seed'], dest: 'seed', type: 'int', help: 'seed weight initialisation and sampling (default: random)' },
      { flags: ['--verbose'], dest: 'verbose', type: 'flag', help: "print nnU-Net's full training log as it is written" },
      ...SERVER_OPTIONS,
    ],
  },
  async run(args, io) {
    const fold = parseFold(args.fold);
    const trainer = String(args.trainer);
    const module = looksLikeTrainerModule(trainer);
    if (!module && !isKnownTrainer(trainer)) {
      io.stderr(`nnunet train: error: ${new UnknownTrainerError(trainer).message}`);
      return EXIT.usage;
    }
    if (args.numGpus !== 1) {
      io.stderr('nnunet train: -num_gpus: only single-device training is supported (UNIMPLEMENTED)');
      return EXIT.unimplemented;
    }
    const loop = overrides(args);
    const localOnly = module ? `-tr ${trainer} (a trainer module)` : args.pretrained !== undefined ? '-pretrained_weights' : undefined;
    if (localOnly) {
      const target = serverTarget(args, io.env);
      if (target) {
        throw new UsageError(`${localOnly} names a file on this machine, which the server at ${target.address} (${target.source}) does not run or read: it runs only built-in trainers. Train locally (without --server and NNUNET_SERVER) for this`, 'train');
      }
      return trainLocally(args, io, fold, trainer, loop);
    }
    const request: TrainFoldRequest = {
      dataset: String(args.dataset),
      configuration: String(args.configuration),
      fold: String(fold),
      trainer,
      plans: String(args.plans),
      continue_training: Boolean(args.continue),
      export_validation_probabilities: Boolean(args.npz),
      device: (args.device as string | undefined) ?? '',
      num_epochs: loop.numEpochs ?? 0,
      num_iterations_per_epoch: loop.numIterationsPerEpoch ?? 0,
      num_val_iterations_per_epoch: loop.numValIterationsPerEpoch ?? 0,
      ...(args.seed !== undefined ? { seed: args.seed as number } : {}),
      validation_only: Boolean(args.val),
      validate_with_best: Boolean(args.valBest),
      disable_checkpointing: Boolean(args.disableCheckpointing),
    };
    if (!serverTarget(args, io.env) && !torchAvailable()) {
      io.stderr('nnunet train: error: training needs libtorch: install it (Debian: apt install libtorch-dev, or set LIBTORCH_DIR) and run npm run build:native');
      return EXIT.failed;
    }
    const view = jobView(io, Boolean(args.verbose), isTty());
    let jobId: string | undefined;
    let ran = false;
    const following = new AbortController();
    const onInterrupt = (count: number, c: Connection) => {
      view.stopBar();
      // Not running yet: the embedded server drops it with its job store; a named server keeps it queued.
      if (!jobId || (!ran && c.embedded)) return following.abort();
      if (count === 1 && c.embedded) {
        io.stderr('stopping after the current iteration (checkpoint_latest will be written); press Ctrl-C again to kill the fold');
        void c.interruptJobs?.();
      } else if (c.embedded) {
        // The fold is a child of this process: it stops by itself once its IPC channel closes
        // (after its current iteration, writing checkpoint_latest), so there is nothing to wait for.
        io.stderr('not waiting any longer: the fold stops by itself after its current iteration');
        process.exit(130);
      } else if (count === 1) {
        io.stderr(`cancelling job ${jobId} on ${c.address} (the fold stops after its current iteration and writes checkpoint_latest; continue with --c); press Ctrl-C again to stop waiting`);
        void c.client.cancelJob(jobId).catch((err: Error) => io.stderr(`CancelJob failed: ${err.message}`));
      } else following.abort();
    };
    return withConnection(
      args,
      io,
      async ({ client }) => {
        let interrupted = false;
        try {
          for await (const e of client.trainFold(request, { signal: following.signal })) {
            jobId ??= e.job_id;
            view.onEvent(e);
            if (e.state === 'JOB_STATE_RUNNING') ran = true;
            // Back to QUEUED after running: the embedded server stopped it (Ctrl-C).
            else if (ran && e.state === 'JOB_STATE_QUEUED') {
              interrupted = true;
              break;
            }
          }
        } catch (err) {
          if (following.signal.aborted) {
            io.stderr(jobId ? `stopped following job ${jobId}; it goes on on the server` : 'interrupted');
            return 130;
          }
          throw err;
        } finally {
          view.stopBar();
        }
        if (interrupted) {
          io.stdout('stopped; checkpoint_latest written, continue with --c');
          return EXIT.ok;
        }
        const job = await client.getJob(jobId!);
        if (job.state === 'JOB_STATE_SUCCEEDED') {
          const r = jobResult<{ outputFolder: string; meanValidationDice: number | null }>(job);
          if (r.meanValidationDice !== null && r.meanValidationDice !== undefined) io.stdout(`Mean Validation Dice: ${r.meanValidationDice}`);
          io.stdout(`fold ${fold} finished: ${r.outputFolder}`);
          return EXIT.ok;
        }
        io.stderr(`nnunet train: error: job ${job.id} ${job.state.replace(/^JOB_STATE_/, '').toLowerCase()}${job.error ? `: ${job.error}` : ''}`);
        return EXIT.failed;
      },
      { onInterrupt },
    );
  },
};
