// The epoch loop of nnUNetTrainer.run_training (REFERENCE §5.6–5.7): per epoch the poly learning
// rate, N training iterations, M online-validation iterations, pseudo Dice and its EMA, the log
// lines, checkpoint_latest / checkpoint_best by nnU-Net's rules and progress.png. A stop request
// (SIGTERM) is honoured after the current iteration: checkpoint_latest then holds the unfinished
// epoch as the next one to run, so `--c` repeats it with the same learning rate.
import { pyRound, type TrainingLogger } from './logging.js';
import type { BatchSource } from './data/types.js';
import { checkpointsAfterEpoch, type CheckpointKind } from './checkpoint-rules.js';
import { dicePerClass, nanmean, sumCounts, type CountOptions, type HardCounts } from './pseudo-dice.js';
import { polyLr } from './lr-schedule.js';
import type { ProgressLog } from './progress-log.js';
import { trainStep, validationStep, type StepContext } from './steps.js';
import type { TrainerOptions } from './trainer-options.js';

export interface LoopState {
  /** The next epoch to run. */
  currentEpoch: number;
  bestEma: number | null;
}

export interface LoopContext {
  step: StepContext;
  options: TrainerOptions;
  train: BatchSource;
  val: BatchSource;
  log: ProgressLog;
  logger: TrainingLogger;
  countOptions: CountOptions;
  state: LoopState;
  /** Writes a checkpoint storing `currentEpoch`; returns its path, or null when checkpointing is off. */
  saveCheckpoint(kind: CheckpointKind, currentEpoch: number): Promise<string | null>;
  /** Redraws progress.png from the log. */
  plotProgress(): Promise<void>;
  stopRequested(): boolean;
}

export type LoopOutcome = { status: 'completed' } | { status: 'stopped'; epoch: number; checkpoint: string | null };

const now = () => Date.now() / 1000;

/**
 * A turn of the event loop between iterations: a batch that is already prefetched resolves as a
 * microtask, and without this a whole epoch could pass without a signal (SIGTERM) or an IPC write
 * being processed.
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs epochs currentEpoch..numEpochs−1. */
export async function runEpochs(ctx: LoopContext): Promise<LoopOutcome> {
  const { options: o, logger, log, state } = ctx;
  for (let epoch = state.currentEpoch; epoch < o.numEpochs; epoch++) {
    // on_epoch_start / on_train_epoch_start
    log.log('epoch_start_timestamps', now(), epoch);
    ctx.step.network.train();
    const lr = polyLr(epoch, { initialLr: o.initialLr, numEpochs: o.numEpochs, exponent: o.lrExponent });
    ctx.step.optimizer.lr = lr;
    logger.print('');
    logger.print(`Epoch ${epoch}`);
    logger.print(`Current learning rate: ${pyRound(lr, 5)}`);
    log.log('lrs', lr, epoch);

    const trainLosses: number[] = [];
    // Time of the step vs everything else of an iteration (waiting for the batch, and the data
    // pipeline's prefetch work, which runs on this thread while we yield): how data-bound training is.
    let dataWaitTime = 0;
    let trainStepTime = 0;
    for (let i = 0; i < o.numIterationsPerEpoch; i++) {
      const t0 = performance.now();
      const batch = await ctx.train.next();
      const t1 = performance.now();
      trainLosses.push(trainStep(ctx.step, batch));
      const t2 = performance.now();
      logger.event({ type: 'iteration', epoch, iteration: i + 1, total: o.numIterationsPerEpoch, phase: 'train' });
      await yieldToEventLoop();
      trainStepTime += (t2 - t1) / 1000;
      dataWaitTime += (performance.now() - t0 - (t2 - t1)) / 1000;
      if (ctx.stopRequested()) return stop(ctx, epoch);
    }
    log.log('train_losses', mean(trainLosses), epoch);

    // online validation (no gradients, eval mode)
    ctx.step.network.eval();
    const valLosses: number[] = [];
    const counts: HardCounts[] = [];
    for (let i = 0; i < o.numValIterationsPerEpoch; i++) {
      const r = validationStep(ctx.step, await ctx.val.next(), ctx.countOptions);
      valLosses.push(r.loss);
      counts.push(r.counts);
      logger.event({ type: 'iteration', epoch, iteration: i + 1, total: o.numValIterationsPerEpoch, phase: 'val' });
      await yieldToEventLoop();
      if (ctx.stopRequested()) return stop(ctx, epoch);
    }
    const dice = dicePerClass(sumCounts(counts));
    log.log('mean_fg_dice', nanmean(dice), epoch);
    log.log('dice_per_class_or_region', dice, epoch);
    log.log('val_losses', mean(valLosses), epoch);

    // on_epoch_end
    log.log('epoch_end_timestamps', now(), epoch);
    const trainLoss = log.last('train_losses') as number;
    const valLoss = log.last('val_losses') as number;
    const epochTime = (log.last('epoch_end_timestamps') as number) - (log.last('epoch_start_timestamps') as number);
    logger.print('train_loss', pyRound(trainLoss, 4));
    logger.print('val_loss', pyRound(valLoss, 4));
    logger.print('Pseudo dice', `[${dice.map((d) => pyRound(d, 4)).join(', ')}]`);
    logger.print(`Epoch time: ${pyRound(epochTime, 2)} s`);

    const ema = log.last('ema_fg_dice') as number;
    const decision = checkpointsAfterEpoch(epoch, o.numEpochs, o.saveEvery, ema, state.bestEma);
    logger.event({ type: 'epoch', epoch, train_loss: trainLoss, val_loss: valLoss, pseudo_dice: dice, mean_fg_dice: nanmean(dice), ema, lr, epoch_time: epochTime, data_wait_time: dataWaitTime, train_step_time: trainStepTime, new_best: decision.best });
    if (decision.latest) await ctx.saveCheckpoint('latest', epoch + 1);
    if (decision.best) {
      state.bestEma = ema;
      logger.print(`Yayy! New best EMA pseudo Dice: ${pyRound(ema, 4)}`);
      await ctx.saveCheckpoint('best', epoch + 1);
    }
    await ctx.plotProgress();
    state.currentEpoch = epoch + 1;
    if (ctx.stopRequested() && epoch + 1 < o.numEpochs) return stop(ctx, epoch + 1);
  }
  return { status: 'completed' };
}

async function stop(ctx: LoopContext, nextEpoch: number): Promise<LoopOutcome> {
  // Logs of an unfinished epoch are dropped: the resumed run logs that epoch afresh.
  ctx.log.truncate(nextEpoch);
  ctx.state.currentEpoch = nextEpoch;
  ctx.logger.print(`Stop requested: writing checkpoint_latest; continue with --c from epoch ${nextEpoch}`);
  const checkpoint = await ctx.saveCheckpoint('latest', nextEpoch);
  return { status: 'stopped', epoch: nextEpoch, checkpoint };
}

function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}
