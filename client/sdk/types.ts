// TypeScript shapes of the nnunet.v1 messages the SDK exchanges, as @grpc/proto-loader produces
// them (keepCase: field names as in the .proto files; enums as their names; int64 as numbers).
// protos/nnunet/v1/*.proto stay the source of truth; these mirror them for the compiler.

export type CaseSplit = 'CASE_SPLIT_UNSPECIFIED' | 'CASE_SPLIT_TRAINING' | 'CASE_SPLIT_TEST';
export type PredictOutput = 'PREDICT_OUTPUT_SEGMENTATION' | 'PREDICT_OUTPUT_PROBABILITIES';
export type PredictStage = 'PREDICT_STAGE_QUEUED' | 'PREDICT_STAGE_LOADING_MODEL' | 'PREDICT_STAGE_PREDICTING' | 'PREDICT_STAGE_EXPORTING';
export type JobState = 'JOB_STATE_UNSPECIFIED' | 'JOB_STATE_QUEUED' | 'JOB_STATE_RUNNING' | 'JOB_STATE_SUCCEEDED' | 'JOB_STATE_FAILED' | 'JOB_STATE_CANCELLED';
export type JobKind = 'JOB_KIND_UNSPECIFIED' | 'JOB_KIND_PLAN_AND_PREPROCESS' | 'JOB_KIND_TRAIN_FOLD' | 'JOB_KIND_FIND_BEST_CONFIGURATION' | 'JOB_KIND_INSTALL_MODEL';
export type JobEventType = 'JOB_EVENT_TYPE_UNSPECIFIED' | 'JOB_EVENT_TYPE_STATE' | 'JOB_EVENT_TYPE_PROGRESS' | 'JOB_EVENT_TYPE_EPOCH' | 'JOB_EVENT_TYPE_LOG';

export interface ServerInfo {
  version: string;
  engines: string[];
  max_voxels: number;
  max_receive_message_bytes: number;
  max_upload_bytes: number;
  chunk_size_bytes: number;
  max_concurrent_predictions: number;
  max_queued_predictions: number;
  auth_enabled: boolean;
  /** Ports the server listens on (0 = that listener is off). */
  ports: { grpc: number; metrics: number; health: number };
  /** CUDA devices libtorch sees (0 on CPU-only hosts), and why when there are none. */
  cuda_device_count: number;
  cuda_note: string;
  onnxruntime_execution_providers: { name: string; bundled: boolean }[];
  max_concurrent_trainings: number;
  preprocess_workers: number;
}

/** dataset + configuration (trainer and plans default to nnUNetTrainer / nnUNetPlans), or dataset + model_folder. */
export interface ModelRef {
  dataset: string;
  trainer?: string;
  plans?: string;
  configuration?: string;
  model_folder?: string;
}

export interface Model {
  dataset: string;
  trainer: string;
  plans: string;
  configuration: string;
  folds: string[];
}

export interface LabelDefinition {
  name: string;
  values: number[];
}

export interface ModelDetails {
  model: Model;
  channel_names: string[];
  labels: LabelDefinition[];
  patch_size: number[];
  spacing: number[];
  file_ending: string;
  /** The model's dataset.json and plans.json as stored (JSON text). */
  dataset_json: string;
  plans_json: string;
}

export interface DatasetCase {
  case_id: string;
  split: CaseSplit;
  channels: number[];
  has_label: boolean;
  size_bytes: number;
}

export interface Dataset {
  id: number;
  name: string;
  channel_names: string[];
  labels: LabelDefinition[];
  file_ending: string;
  num_training: number;
  description: string;
  cases: DatasetCase[];
}

export interface CreateDatasetRequest {
  id: number;
  name: string;
  channel_names: string[];
  labels: LabelDefinition[];
  regions_class_order?: number[];
  file_ending?: string;
  description?: string;
}

export interface UploadedFile {
  case_id: string;
  path: string;
  size_bytes: number;
  sha256: string;
  shape: number[];
  spacing: number[];
}

export interface DatasetProblem {
  file: string;
  reason: string;
}

export interface VerifyReport {
  ok: boolean;
  errors: DatasetProblem[];
  warnings: DatasetProblem[];
  cases_checked: number;
}

/** DatasetService.PlanAndPreprocess; empty fields take the server's defaults. */
export interface PlanAndPreprocessRequest {
  dataset: string;
  configurations?: string[];
  planner?: string;
  gpu_memory_target_gb?: number;
  num_processes?: number;
  verify_dataset_integrity?: boolean;
}

/** TrainingService.TrainFold; empty or zero fields take the trainer's defaults. */
export interface TrainFoldRequest {
  dataset: string;
  configuration: string;
  fold: string;
  trainer?: string;
  plans?: string;
  continue_training?: boolean;
  export_validation_probabilities?: boolean;
  device?: string;
  num_epochs?: number;
  detach?: boolean;
  num_iterations_per_epoch?: number;
  num_val_iterations_per_epoch?: number;
  seed?: number;
  validation_only?: boolean;
  validate_with_best?: boolean;
  disable_checkpointing?: boolean;
}

/** TrainingService.FindBestConfiguration. */
export interface FindBestConfigurationRequest {
  dataset: string;
  configurations?: string[];
  trainer?: string;
  plans?: string;
  folds?: string[];
  disable_ensembling?: boolean;
  trainers?: string[];
  plans_identifiers?: string[];
  num_processes?: number;
}

export interface PredictProgress {
  stage: PredictStage;
  done: number;
  total: number;
}

export interface PredictGeometry {
  shape: number[];
  spacing: number[];
  affine: number[];
  labels: LabelDefinition[];
  segmentation_size_bytes: number;
  probabilities_size_bytes: number;
  dicom_seg_size_bytes: number;
}

export interface PredictSummary {
  segmentation_sha256: string;
  probabilities_sha256: string;
  queue_seconds: number;
  preprocess_seconds: number;
  predict_seconds: number;
  export_seconds: number;
  voxels: number;
  dicom_seg_sha256: string;
  dicom_seg_sop_instance_uid: string;
  dicom_seg_series_instance_uid: string;
  /** The server stored the SEG into its PACS (PredictHeader.dicomweb_series.store_seg). */
  dicom_seg_stored: boolean;
}

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export interface Job {
  id: string;
  kind: JobKind;
  state: JobState;
  progress: number;
  create_time: Timestamp | null;
  start_time: Timestamp | null;
  finish_time: Timestamp | null;
  error: string;
  params_json: string;
  result_json: string;
  message: string;
}

export interface EpochSummary {
  epoch: number;
  num_epochs: number;
  train_loss: number;
  val_loss: number;
  pseudo_dice: number[];
  ema_pseudo_dice: number;
  learning_rate: number;
  epoch_seconds: number;
  new_best: boolean;
}

export interface JobEvent {
  job_id: string;
  sequence: number;
  time: Timestamp | null;
  type: JobEventType;
  message: string;
  progress: number;
  state: JobState;
  epoch: EpochSummary | null;
}

export const FINAL_JOB_STATES: readonly JobState[] = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'];

// ---- Pretrained catalog, installs from it or a URL, export (ModelService) ----

export type ModelState = 'MODEL_STATE_UNSPECIFIED' | 'MODEL_STATE_READY' | 'MODEL_STATE_LOADING' | 'MODEL_STATE_FAILED';

export interface FoldStatus {
  fold: string;
  /** "model.onnx", "checkpoint_final.pth", ...; '' when the fold has none. */
  network: string;
  /** '' when usable. */
  problem: string;
}

/** ListModelsResponse.statuses (same order as models) and GetModelResponse.status. */
export interface ModelStatus {
  state: ModelState;
  state_reason: string;
  folds: FoldStatus[];
  channel_names: string[];
  labels: LabelDefinition[];
  loaded: boolean;
}

export type PretrainedFormat = 'PRETRAINED_FORMAT_UNSPECIFIED' | 'PRETRAINED_FORMAT_NNUNETV2_ZIP' | 'PRETRAINED_FORMAT_NNUNETV1_ZIP';

export interface PretrainedModel {
  name: string;
  description: string;
  dataset: string;
  channels: { name: string; meaning: string }[];
  labels: LabelDefinition[];
  licence: string;
  citation: string;
  urls: string[];
  /** '' when the catalog records none. */
  sha256: string;
  /** 0 when unknown. */
  size_bytes: number;
  format: PretrainedFormat;
  runnable: boolean;
  installed: Model[];
  /** Shipped with the server: installs with no download. */
  bundled: boolean;
}

/** A catalog name, or a URL with its SHA-256. */
export interface InstallPretrainedRequest {
  catalog_name?: string;
  url?: string;
  sha256?: string;
  overwrite?: boolean;
}

export interface InstallProgress {
  stage: string;
  bytes_done: number;
  bytes_total: number;
  message: string;
}

export interface InstallPretrainedResult {
  models: Model[];
  sha256: string;
  size_bytes: number;
}

export interface ExportModelRequest {
  dataset: string;
  configurations?: string[];
  trainer?: string;
  plans?: string;
  folds?: string[];
  checkpoints?: string[];
}

export interface ExportModelHeader {
  size_bytes: number;
  members: string[];
  models: Model[];
}
