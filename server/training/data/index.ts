// The training data pipeline's public surface: the batch-source contract and its implementation
// (case store, nnU-Net's patch sampling and on-device augmentation), for the trainer.
export type { BatchSource, DataPipelineOptions, TrainingBatch } from './types.js';
export { createBatchSource, planPipeline, DEFAULT_OVERSAMPLE_FOREGROUND_PERCENT, DEFAULT_PREFETCH, type PipelinePlan } from './batch-source.js';
export { CaseStore, DEFAULT_CACHE_BYTES, type CaseInfo, type CaseCrop } from './case-store.js';
export {
  getPatchSize,
  initialPatchSize,
  bboxBounds,
  chooseBbox,
  isForcedForeground,
  deepSupervisionScales,
  scaledShape,
  type ClassLocations,
} from './patch-geometry.js';
export { DA } from './augment.js';
