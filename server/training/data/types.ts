// The contract between the training data pipeline (loading, patch sampling, augmentation) and the
// trainer loop: a stream of batches already on the engine's device, with one target per
// deep-supervision scale (REFERENCE §5.2–§5.4). The trainer never sees arrays or workers.
import type { Tensor } from '../../engine/torch.js';

export interface TrainingBatch {
  /** float32 (B, C, ...patch) on the training device; C includes cascade one-hot channels. */
  data: Tensor;
  /**
   * One target per deep-supervision scale, full resolution first: (B, 1, ...scaled patch) label
   * maps (float32 holding integer labels, ignore label kept) for label datasets, or (B, R[+1], ...)
   * boolean/float region channels (+ the ignore channel) for region datasets.
   */
  targets: Tensor[];
  /** Case ids in batch order (for debugging and logging). */
  keys: string[];
}

export interface BatchSource {
  /** The next batch; the caller owns (and disposes) its tensors. */
  next(): Promise<TrainingBatch>;
  /** Stops background work (workers, prefetch) and frees its memory. */
  close(): Promise<void>;
}

export interface DataPipelineOptions {
  /** Preprocessed case folder: `nnUNet_preprocessed/DatasetXXX/<data_identifier>`. */
  folder: string;
  caseIds: string[];
  /** Final patch size (2 entries for 2D configurations). */
  patchSize: number[];
  batchSize: number;
  /** Strides of the network's stages, for the deep-supervision target scales; null = no deep supervision. */
  stageStrides: number[][] | null;
  /** Training (augmentation, enlarged initial patch) or online validation (neither). */
  mode: 'train' | 'val';
  oversampleForegroundPercent?: number;
  /** nnUNetTrainer_probabilisticOversampling: each sample is forced with that probability instead of the last ones. */
  probabilisticOversampling?: boolean;
  /** Image channels that were normalised with a mask (use_mask_for_norm): zeroed where seg < 0. */
  maskedChannels?: number[];
  /** Mirror axes for augmentation (also the inference mirroring axes). */
  mirrorAxes: number[];
  /** From configure_rotation_dummyDA_mirroring_and_inital_patch_size (§5.3). */
  dummy2d: boolean;
  rotationRange: [number, number];
  /** Label semantics (regions, ignore label, foreground labels for the cascade). */
  labels: import('../../dataset/labels.js').LabelManager;
  /** Previous-stage segmentations folder for 3d_cascade_fullres. */
  previousStageFolder?: string;
  device: import('../../engine/torch.js').Device;
  /** Seeds the sampling/augmentation decisions (and, in train mode, libtorch's generator); omitted = random. */
  seed?: number;
  /** Whole cases are kept in memory up to this many bytes; beyond it each sample reads its slab (default 2 GiB). */
  cacheBytes?: number;
  /** Batches prepared ahead of the trainer's requests (default 2). */
  prefetch?: number;
}
