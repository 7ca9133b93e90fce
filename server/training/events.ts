// What a fold in training reports: the events the child process streams over IPC, the CLI and
// the gRPC layer show, and training_log.jsonl records (one JSON object per line, NaN as null).
import type { CheckpointKind } from './checkpoint-rules.js';

export interface StartedEvent {
  type: 'started';
  pid: number;
  trainer: string;
  plans: string;
  configuration: string;
  fold: number | 'all';
  device: string;
  outputFolder: string;
  numEpochs: number;
  /** The epoch this run starts at (> 0 when continuing). */
  startEpoch: number;
  numIterationsPerEpoch: number;
  numValIterationsPerEpoch: number;
  /** Checkpoint continued from, or null. */
  resumedFrom: string | null;
  trainCases: number;
  valCases: number;
}

export interface IterationEvent {
  type: 'iteration';
  epoch: number;
  /** 1-based count of training iterations done in this epoch. */
  iteration: number;
  total: number;
  phase: 'train' | 'val';
}

export interface EpochEvent {
  type: 'epoch';
  epoch: number;
  train_loss: number;
  val_loss: number;
  /** Per foreground class or region; NaN where a class never occurred. */
  pseudo_dice: number[];
  mean_fg_dice: number;
  ema: number;
  lr: number;
  /** Seconds. */
  epoch_time: number;
  /** Seconds of the epoch's training iterations spent on data (waiting + prefetch work on this thread), and on steps. */
  data_wait_time: number;
  train_step_time: number;
  new_best: boolean;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  kind: CheckpointKind;
  path: string;
  /** current_epoch stored in it: the next epoch to run. */
  epoch: number;
}

export interface ValidationEvent {
  type: 'validation';
  phase: 'started' | 'case' | 'done';
  cases: number;
  done?: number;
  caseId?: string;
  /** foreground_mean Dice of summary.json (phase 'done'). */
  meanDice?: number;
  summaryFile?: string;
}

export interface LogEvent {
  type: 'log';
  line: string;
}

export interface FinishedEvent {
  type: 'finished';
  outputFolder: string;
  epochs: number;
  meanValidationDice: number | null;
}

/** Graceful stop (SIGTERM): the current iteration finished and checkpoint_latest was written. */
export interface StoppedEvent {
  type: 'stopped';
  epoch: number;
  checkpoint: string | null;
}

export interface FailedEvent {
  type: 'failed';
  message: string;
  /** The error's class name (DatasetError, UnknownTrainerError, ...), when the child caught it. */
  errorName?: string;
  stack?: string;
  exitCode?: number | null;
  signal?: string | null;
}

export type FoldEvent = StartedEvent | IterationEvent | EpochEvent | CheckpointEvent | ValidationEvent | LogEvent | FinishedEvent | StoppedEvent | FailedEvent;

export type EmitEvent = (event: FoldEvent) => void;
