// When nnU-Net writes which checkpoint (REFERENCE §5.7, on_epoch_end / on_train_end) and which one
// `--c` resumes from (run_training.py): pure decisions, kept apart from the file writing so the
// rules can be read and tested on their own.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export type CheckpointKind = 'latest' | 'best' | 'final';

export const checkpointName = (kind: CheckpointKind) => `checkpoint_${kind}`;

export interface EpochCheckpointDecision {
  latest: boolean;
  best: boolean;
}

/**
 * After epoch `epoch` (0-based): checkpoint_latest every `saveEvery` epochs except the last one
 * (the final checkpoint follows right after); checkpoint_best whenever the EMA pseudo Dice beats
 * the best so far — always at the first epoch, never for a NaN EMA (NaN compares false, as in Python).
 */
export function checkpointsAfterEpoch(epoch: number, numEpochs: number, saveEvery: number, ema: number, bestEma: number | null): EpochCheckpointDecision {
  return {
    latest: (epoch + 1) % saveEvery === 0 && epoch !== numEpochs - 1,
    best: bestEma === null || ema > bestEma,
  };
}

/** `--c` looks for checkpoint_final, then checkpoint_latest, then checkpoint_best. */
export const RESUME_ORDER: CheckpointKind[] = ['final', 'latest', 'best'];

/** The checkpoint `--c` continues from (path without extension), or null when there is none. */
export function findResumeCheckpoint(foldFolder: string): { kind: CheckpointKind; path: string } | null {
  for (const kind of RESUME_ORDER) {
    const path = join(foldFolder, checkpointName(kind));
    if (existsSync(`${path}.safetensors`) && existsSync(`${path}.json`)) return { kind, path };
  }
  return null;
}
