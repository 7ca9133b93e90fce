// Saving and restoring a fold's training state through our checkpoint pair (server/engine/
// checkpoint.ts): weights, SGD momentum buffers, GradScaler, the logger lists, the best EMA and
// the next epoch — what nnU-Net's save_checkpoint/load_checkpoint keep (REFERENCE §6.4).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint, restoreSgd, saveCheckpoint, sgdState } from '../engine/checkpoint.js';
import type { TrainableNetwork } from './custom-trainer.js';
import type { Optimisation } from './components.js';
import { checkpointName, type CheckpointKind } from './checkpoint-rules.js';
import { ProgressLog } from './progress-log.js';

export interface FoldIdentity {
  trainerName: string;
  plansName: string;
  configuration: string;
  fold: number | 'all';
  inferenceAllowedMirroringAxes: number[];
  initialLr: number;
}

export interface SaveInput {
  foldFolder: string;
  network: TrainableNetwork;
  optimisation: Optimisation;
  log: ProgressLog;
  bestEma: number | null;
  identity: FoldIdentity;
}

/** Writes checkpoint_<kind> with `currentEpoch` = the next epoch to run; returns its path (no extension). */
export async function saveFoldCheckpoint(kind: CheckpointKind, currentEpoch: number, s: SaveInput): Promise<string> {
  const path = join(s.foldFolder, checkpointName(kind));
  const { optimizer, paramNames, scaler } = s.optimisation;
  await saveCheckpoint(path, {
    weights: s.network.stateDict(),
    optimizerState: sgdState(optimizer, paramNames, s.identity.initialLr),
    trainerState: {
      current_epoch: currentEpoch,
      logging: s.log.snapshot(),
      _best_ema: s.bestEma,
      configuration: s.identity.configuration,
      fold: s.identity.fold,
      plans_name: s.identity.plansName,
      trainer_name: s.identity.trainerName,
      inference_allowed_mirroring_axes: s.identity.inferenceAllowedMirroringAxes,
      grad_scaler_state: scaler ? scaler.stateDict() : null,
    },
  });
  return path;
}

export async function removeFoldCheckpoint(foldFolder: string, kind: CheckpointKind): Promise<void> {
  const path = join(foldFolder, checkpointName(kind));
  await Promise.all([rm(`${path}.safetensors`, { force: true }), rm(`${path}.json`, { force: true })]);
}

export interface RestoredState {
  currentEpoch: number;
  log: ProgressLog;
  bestEma: number | null;
  inferenceAllowedMirroringAxes: number[];
  trainerName: string;
}

/**
 * Loads a checkpoint into the network (strict: every key, every shape) and, when given, the
 * optimiser and scaler. The logger lists are cut to the epochs the checkpoint completed.
 */
export async function restoreFoldCheckpoint(path: string, network: TrainableNetwork, optimisation: Optimisation | null, emaAlpha: number): Promise<RestoredState> {
  const ck = await loadCheckpoint(path);
  network.loadStateDict(ck.weights);
  if (optimisation) {
    if (ck.optimizerState) restoreSgd(optimisation.optimizer, optimisation.paramNames, ck.optimizerState);
    if (optimisation.scaler && ck.trainerState.grad_scaler_state) optimisation.scaler.loadStateDict(ck.trainerState.grad_scaler_state);
  }
  const s = ck.trainerState;
  const log = new ProgressLog(s.logging, emaAlpha);
  log.truncate(s.current_epoch);
  return { currentEpoch: s.current_epoch, log, bestEma: s._best_ema, inferenceAllowedMirroringAxes: s.inference_allowed_mirroring_axes, trainerName: s.trainer_name };
}
