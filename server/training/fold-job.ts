// One fold from start to finish, as nnU-Net's run_training.py + nnUNetTrainer.run_training +
// perform_actual_validation: set up, build the network (pretrained weights or `--c` state),
// train, checkpoint_final, final validation. Runs inside the fold's child process (fold-process.ts)
// and talks to the outside world only through events.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildInfo, cudaAvailable, manualSeed, setCudnnBenchmark, setNumThreads, type Device } from '../engine/torch.js';
import { createBatchSource, type BatchSource, type DataPipelineOptions } from './data/index.js';
import { findResumeCheckpoint, checkpointName } from './checkpoint-rules.js';
import { buildLoss, buildTrainingNetwork, deepSupervisionOutputs, numInputChannels, prepareOptimisation } from './components.js';
import { pyRepr, writeDebugJson } from './debug-json.js';
import type { EmitEvent } from './events.js';
import { performFinalValidation } from './final-validation.js';
import { removeFoldCheckpoint, restoreFoldCheckpoint, saveFoldCheckpoint, type FoldIdentity } from './fold-checkpoints.js';
import { setUpFold, writeModelFolderFiles, type FoldRequest, type FoldSetup } from './fold-setup.js';
import { CITATION_BANNER, TrainingLogger } from './logging.js';
import { loadPretrainedWeights } from './pretrained.js';
import { writeProgressPng } from './progress-plot.js';
import { ProgressLog } from './progress-log.js';
import { runEpochs, type LoopState } from './train-loop.js';

export interface FoldJobOptions extends FoldRequest {
  /** --c: continue from checkpoint_final → checkpoint_latest → checkpoint_best. */
  continueTraining?: boolean;
  /** --val: only the final validation, with checkpoint_final. */
  validationOnly?: boolean;
  /** --val_best: validate with checkpoint_best instead of the final weights. */
  validateWithBest?: boolean;
  /** --npz: also save the validation probabilities. */
  saveProbabilities?: boolean;
  pretrainedWeights?: string;
  device?: 'cpu' | 'cuda';
  disableCheckpointing?: boolean;
  /** Seeds libtorch (weights init, sampling that uses it); default: random. */
  seed?: number;
  /** libtorch intra-op threads; default all cores on CPU, 1 with CUDA (as nnU-Net). */
  numThreads?: number;
  /** Module exporting createBatchSource (default: the data pipeline, server/training/data). */
  batchSourceModule?: string;
}

export interface FoldControl {
  stopRequested(): boolean;
}

export interface FoldJobResult {
  status: 'finished' | 'stopped';
  outputFolder: string;
  meanValidationDice: number | null;
}

/** A mistake in the request (flags that contradict each other, a missing checkpoint, no GPU). */
export class TrainingRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingRequestError';
  }
}

type CreateBatchSource = (o: DataPipelineOptions) => BatchSource | Promise<BatchSource>;

/** The data pipeline, or a module exporting the same createBatchSource (tests, custom loaders). */
async function batchSourceFactory(spec: string | undefined): Promise<CreateBatchSource> {
  if (!spec) return createBatchSource;
  const url = spec.startsWith('file:') ? spec : pathToFileURL(spec).href;
  let mod: { createBatchSource?: unknown };
  try {
    mod = (await import(url)) as { createBatchSource?: unknown };
  } catch (err) {
    throw new Error(`cannot load the training data pipeline ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.createBatchSource !== 'function') throw new Error(`${url} does not export createBatchSource(options)`);
  return mod.createBatchSource as CreateBatchSource;
}

function checkRequest(o: FoldJobOptions): void {
  if (o.continueTraining && o.pretrainedWeights) {
    throw new TrainingRequestError('Cannot both continue a training AND load pretrained weights. Pretrained weights can only be used at the beginning of the training.');
  }
  if (o.validateWithBest && o.disableCheckpointing) throw new TrainingRequestError('--val_best is not compatible with --disable_checkpointing');
  if (o.device === 'cuda' && !cudaAvailable()) throw new TrainingRequestError('-device cuda: no CUDA device is available to libtorch (a CPU-only libtorch, or no GPU); use -device cpu');
}

function pipelineOptions(s: FoldSetup, device: Device, seed: number | undefined): Omit<DataPipelineOptions, 'caseIds' | 'mode'> {
  const o = s.trainer.options;
  return {
    folder: s.dataFolder,
    patchSize: s.configuration.patch_size,
    batchSize: s.configuration.batch_size,
    stageStrides: o.enableDeepSupervision ? s.configuration.architecture.arch_kwargs.strides : null,
    oversampleForegroundPercent: o.oversampleForegroundPercent,
    probabilisticOversampling: o.probabilisticOversampling,
    maskedChannels: s.configuration.use_mask_for_norm.flatMap((m, i) => (m ? [i] : [])),
    mirrorAxes: s.geometry.mirrorAxes,
    dummy2d: s.geometry.dummy2d,
    rotationRange: s.geometry.rotationRange,
    labels: s.labels,
    ...(s.previousStageFolder ? { previousStageFolder: s.previousStageFolder } : {}),
    device,
    ...(seed !== undefined ? { seed } : {}),
  };
}

/** Runs the fold; resolves 'stopped' after a graceful stop, throws on failure. */
export async function runFoldJob(o: FoldJobOptions, emit: EmitEvent, control: FoldControl = { stopRequested: () => false }): Promise<FoldJobResult> {
  checkRequest(o);
  const s = await setUpFold(o);
  const opts = s.trainer.options;
  const device: Device = o.device ?? 'cpu';
  const logger = new TrainingLogger(s.paths.foldFolder, emit);
  logger.printRaw(CITATION_BANNER);
  logger.print(`Using device: ${device}`);
  // As run_training.py: all cores for CPU training; one thread and cudnn.benchmark with a GPU.
  setNumThreads(o.numThreads ?? (device === 'cpu' ? availableParallelism() : 1));
  if (device !== 'cpu') setCudnnBenchmark(true);
  if (o.seed !== undefined) manualSeed(o.seed);
  for (const m of s.splitMessages) logger.print(m);
  logger.print(`do_dummy_2d_data_aug: ${s.geometry.dummy2d ? 'True' : 'False'}`);

  const inputChannels = numInputChannels(Object.keys(s.datasetJson.channel_names).length, s.configuration, s.labels);
  const numClasses = s.labels.numSegmentationHeads;
  const network = buildTrainingNetwork({
    plans: s.plans,
    configurationName: s.configurationName,
    configuration: s.configuration,
    inputChannels,
    numClasses,
    deepSupervision: opts.enableDeepSupervision,
    seed: o.seed,
    builder: s.trainer.buildNetwork,
  });
  if (o.pretrainedWeights) {
    const r = await loadPretrainedWeights(network, o.pretrainedWeights);
    logger.print(`Loaded pretrained weights from ${r.file}: ${r.loaded.length} tensors copied, ${r.keptInitialised.length} segmentation-head tensors kept initialised, ${r.ignored.length} source keys ignored`);
  }
  const optimisation = prepareOptimisation(network, opts, device);
  const { loss, description } = buildLoss(opts, s.labels, s.configuration.batch_dice, deepSupervisionOutputs(s.configuration));

  const state: LoopState = { currentEpoch: 0, bestEma: null };
  let log = new ProgressLog(undefined, opts.emaAlpha);
  let mirrorAxes = s.geometry.inferenceAllowedMirroringAxes;
  let resumedFrom: string | null = null;
  const restore = async (path: string) => {
    const r = await restoreFoldCheckpoint(path, network, optimisation, opts.emaAlpha);
    state.currentEpoch = r.currentEpoch;
    state.bestEma = r.bestEma;
    log = r.log;
    mirrorAxes = r.inferenceAllowedMirroringAxes;
    resumedFrom = path;
  };
  if (o.validationOnly) {
    const found = findResumeCheckpoint(s.paths.foldFolder);
    if (found?.kind !== 'final') throw new TrainingRequestError(`Cannot run validation because the training is not finished yet (no ${checkpointName('final')} in ${s.paths.foldFolder})`);
    await restore(found.path);
  } else if (o.continueTraining) {
    const found = findResumeCheckpoint(s.paths.foldFolder);
    if (found) await restore(found.path);
    else logger.print('WARNING: Cannot continue training because there seems to be no checkpoint available to continue from. Starting a new training...');
  }

  await writeModelFolderFiles(s);
  const identity: FoldIdentity = { trainerName: s.trainer.name, plansName: s.plansName, configuration: s.configurationName, fold: o.fold, inferenceAllowedMirroringAxes: mirrorAxes, initialLr: opts.initialLr };
  const save = async (kind: 'latest' | 'best' | 'final', currentEpoch: number): Promise<string | null> => {
    if (o.disableCheckpointing) {
      logger.print('No checkpoint written, checkpointing is disabled');
      return null;
    }
    const path = await saveFoldCheckpoint(kind, currentEpoch, { foldFolder: s.paths.foldFolder, network, optimisation, log, bestEma: state.bestEma, identity });
    logger.event({ type: 'checkpoint', kind, path, epoch: currentEpoch });
    return path;
  };
  const streamDescription = (mode: string, cases: number) => `<BatchSource ${mode}: ${cases} cases, batch ${s.configuration.batch_size}, patch [${s.configuration.patch_size.join(', ')}]>`;
  await writeDebugJson(join(s.paths.foldFolder, 'debug.json'), {
    trainerName: s.trainer.name,
    options: opts,
    plans: s.plans,
    configurationName: s.configurationName,
    configuration: s.configuration,
    datasetJson: s.datasetJson,
    fold: o.fold,
    device,
    batchSize: s.configuration.batch_size,
    numInputChannels: inputChannels,
    geometry: s.geometry,
    isCascaded: Boolean(s.configuration.previous_stage),
    folderWithSegsFromPreviousStage: s.previousStageFolder,
    outputFolder: s.paths.foldFolder,
    outputFolderBase: s.paths.modelFolder,
    preprocessedFolder: s.dataFolder,
    preprocessedFolderBase: s.paths.preprocessedBase,
    logFile: logger.textFile,
    loss: description,
    networkClass: network.constructor.name,
    dataloaderTrain: streamDescription('train', s.split.train.length),
    dataloaderVal: streamDescription('val', s.split.val.length),
    currentEpoch: state.currentEpoch,
    bestEma: state.bestEma,
    gradScaler: optimisation.scaler !== null,
    disableCheckpointing: Boolean(o.disableCheckpointing),
    torchVersion: buildInfo().torchVersion,
  });
  const { configurations: _c, ...globalPlans } = s.plans;
  logger.printRaw(`\nThis is the configuration used by this training:\nConfiguration name: ${s.configurationName}\n ${pyRepr(s.configuration)} \n`);
  logger.printRaw(`These are the global plan.json settings:\n ${pyRepr(globalPlans)} \n`);
  logger.event({
    type: 'started',
    pid: process.pid,
    trainer: s.trainer.name,
    plans: s.plansName,
    configuration: s.configurationName,
    fold: o.fold,
    device,
    outputFolder: s.paths.foldFolder,
    numEpochs: opts.numEpochs,
    startEpoch: state.currentEpoch,
    numIterationsPerEpoch: opts.numIterationsPerEpoch,
    numValIterationsPerEpoch: opts.numValIterationsPerEpoch,
    resumedFrom,
    trainCases: s.split.train.length,
    valCases: s.split.val.length,
  });

  if (!o.validationOnly) {
    const create = await batchSourceFactory(o.batchSourceModule);
    const common = pipelineOptions(s, device, o.seed);
    const train = await create({ ...common, caseIds: s.split.train, mode: 'train' });
    // Its own decision stream: a seeded validation source must not replay the training draws.
    const val = await create({ ...common, caseIds: s.split.val, mode: 'val', ...(o.seed !== undefined ? { seed: o.seed + 1 } : {}) });
    let outcome;
    try {
      outcome = await runEpochs({
        step: { network, params: optimisation.params, loss, optimizer: optimisation.optimizer, scaler: optimisation.scaler, gradClipNorm: opts.gradClipNorm, amp: device.startsWith('cuda') },
        options: opts,
        train,
        val,
        log,
        logger,
        countOptions: { hasRegions: s.labels.hasRegions, ignoreLabel: s.labels.ignoreLabel ?? null, regionIgnoreChannel: s.labels.hasRegions && s.labels.hasIgnoreLabel },
        state,
        saveCheckpoint: save,
        plotProgress: async () => {
          try {
            await writeProgressPng(join(s.paths.foldFolder, 'progress.png'), log.lists);
          } catch (err) {
            logger.print(`Unable to plot progress.png: ${(err as Error).message}`);
          }
        },
        stopRequested: () => control.stopRequested(),
      });
    } finally {
      await Promise.all([train.close(), val.close()]);
    }
    if (outcome.status === 'stopped') {
      logger.event({ type: 'stopped', epoch: outcome.epoch, checkpoint: outcome.checkpoint });
      return { status: 'stopped', outputFolder: s.paths.foldFolder, meanValidationDice: null };
    }
    // on_train_end: the final checkpoint stores num_epochs; checkpoint_latest is no longer needed.
    await save('final', opts.numEpochs);
    if (!o.disableCheckpointing) await removeFoldCheckpoint(s.paths.foldFolder, 'latest');
  }

  if (o.validateWithBest) {
    const best = join(s.paths.foldFolder, checkpointName('best'));
    await restoreFoldCheckpoint(best, network, null, opts.emaAlpha);
    logger.print(`Validating with ${checkpointName('best')}`);
  }
  const result = await performFinalValidation({
    network,
    trainerName: s.trainer.name,
    plans: s.plans,
    configurationName: s.configurationName,
    configuration: s.configuration,
    datasetJson: s.datasetJson,
    labels: s.labels,
    preprocessedBase: s.paths.preprocessedBase,
    caseIds: s.split.val,
    modelFolder: s.paths.modelFolder,
    foldFolder: s.paths.foldFolder,
    gtFolder: s.paths.gtFolder,
    mirrorAxes,
    saveProbabilities: Boolean(o.saveProbabilities),
    writeModelOnnx: !o.validateWithBest,
    previousStageFolder: s.previousStageFolder,
    logger,
    emit: (e) => logger.event(e),
    stopRequested: () => control.stopRequested(),
  });
  if (!result) {
    logger.event({ type: 'stopped', epoch: state.currentEpoch, checkpoint: null });
    return { status: 'stopped', outputFolder: s.paths.foldFolder, meanValidationDice: null };
  }
  logger.event({ type: 'finished', outputFolder: s.paths.foldFolder, epochs: opts.numEpochs, meanValidationDice: result.meanDice });
  return { status: 'finished', outputFolder: s.paths.foldFolder, meanValidationDice: result.meanDice };
}
