// `nnunet train DATASET CONFIG FOLD`: nnU-Net v2's nnUNetv2_train with its positional arguments and
// flags (-tr, -p, --c, --val, --val_best, --npz, -pretrained_weights, -device, --disable_checkpointing)
// plus loop-length overrides. The fold runs in its own child process; this command shows a progress
// bar per epoch on a terminal (epoch lines otherwise). Ctrl-C once stops after the current iteration
// (checkpoint_latest is written, continue with --c); twice kills the fold.
import cliProgress from 'cli-progress';
import { cudaAvailable, torchAvailable } from '../../server/engine/torch.js';
import type { EpochEvent, FoldEvent } from '../../server/training/events.js';
import { startFold, type FoldJobOptions } from '../../server/training/run-fold.js';
import type { TrainerOptions } from '../../server/training/trainer-options.js';
import { isKnownTrainer, looksLikeTrainerModule, UnknownTrainerError } from '../../server/training/variants.js';
import { UsageError, type ParsedArgs } from '../args.js';
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

export const trainCommand: Command = {
  spec: {
    name: 'train',
    summary: 'train one fold of a configuration (nnUNetv2_train)',
    description:
      'Trains fold FOLD of configuration CONFIG of a preprocessed dataset in its own process and writes ' +
      'nnUNet_results/DatasetXXX_Name/<Trainer>__<Plans>__<CONFIG>/fold_FOLD/ (checkpoints, model.onnx, progress.png, ' +
      'training logs, validation/ with summary.json). -tr takes an nnU-Net trainer name (nnUNetTrainer_250epochs, ' +
      'nnUNetTrainerNoMirroring, ...) or the path of a trainer module (server/training/README.md). Ctrl-C stops after ' +
      'the current iteration and writes checkpoint_latest; a second Ctrl-C kills the fold.',
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
    ],
  },
  async run(args, io) {
    const fold = parseFold(args.fold);
    const trainer = String(args.trainer);
    if (!looksLikeTrainerModule(trainer) && !isKnownTrainer(trainer)) {
      io.stderr(`nnunet train: error: ${new UnknownTrainerError(trainer).message}`);
      return EXIT.usage;
    }
    if (args.numGpus !== 1) {
      io.stderr('nnunet train: -num_gpus: only single-device training is supported (UNIMPLEMENTED)');
      return EXIT.unimplemented;
    }
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
      overrides: overrides(args),
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
  },
};
