// Training folds: the trainer as small modules (options, variants, schedule, loop, checkpoints,
// logs, progress plot, final validation), run in a child process per fold (run-fold.ts).
export { startFold, trainFold, type FoldHooks, type FoldOutcome, type FoldRun } from './run-fold.js';
export type { FoldJobOptions, FoldJobResult } from './fold-job.js';
export type { FoldEvent, EpochEvent, StartedEvent, CheckpointEvent, ValidationEvent, FinishedEvent, StoppedEvent, FailedEvent, IterationEvent, LogEvent } from './events.js';
export { DEFAULT_TRAINER_OPTIONS, resolveTrainerOptions, TrainerOptionsError, type TrainerOptions, type LossKind, type MirroringMode } from './trainer-options.js';
export { supportedTrainerNames, listTrainerVariants, trainerVariant, UnknownTrainerError, type TrainerVariant, type VariantContext } from './variants.js';
export { resolveTrainer, loadTrainerModule, TrainerModuleError, type TrainerModule, type TrainableNetwork, type NetworkContext, type NetworkBuilder } from './custom-trainer.js';
export { polyLr, polySchedule } from './lr-schedule.js';
export { checkpointsAfterEpoch, findResumeCheckpoint, RESUME_ORDER } from './checkpoint-rules.js';
export { augmentationGeometry, initialPatchSize, type AugmentationGeometry } from './rotation-config.js';
export { loadPretrainedWeights, PretrainedWeightsError, type PretrainedReport } from './pretrained.js';
export { renderProgressPng, writeProgressPng, progressSpec, PROGRESS_PNG_SIZE } from './progress-plot.js';
export { modelFolderName } from './fold-paths.js';
export { loadOrCreateSplits, splitForFold, generateCrossvalSplits, type Split } from './splits.js';
