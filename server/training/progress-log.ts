// The per-epoch lists nnU-Net's nnUNetLogger keeps (training/logging/nnunet_logger.py): one value
// per epoch for losses, pseudo Dice, its EMA, learning rate and timestamps. They go into every
// checkpoint, so a resumed run continues the same curves; progress.png is drawn from them.
import { LOG_LIST_KEYS, type TrainingLogLists } from '../engine/checkpoint.js';
import { emaUpdate } from './pseudo-dice.js';

type ScalarKey = Exclude<keyof TrainingLogLists, 'dice_per_class_or_region'>;

export function emptyLogLists(): TrainingLogLists {
  return {
    mean_fg_dice: [],
    ema_fg_dice: [],
    dice_per_class_or_region: [],
    train_losses: [],
    val_losses: [],
    lrs: [],
    epoch_start_timestamps: [],
    epoch_end_timestamps: [],
  };
}

export class ProgressLog {
  readonly lists: TrainingLogLists;

  constructor(
    lists: TrainingLogLists = emptyLogLists(),
    readonly emaAlpha = 0.9,
  ) {
    this.lists = structuredClone(lists);
  }

  /**
   * Records `value` for `epoch`: appended when the list is one short, overwritten when the epoch
   * is already there (nnU-Net does the same, with a warning). Logging mean_fg_dice also logs the EMA.
   */
  log(key: ScalarKey, value: number, epoch: number): void;
  log(key: 'dice_per_class_or_region', value: number[], epoch: number): void;
  log(key: keyof TrainingLogLists, value: number | number[], epoch: number): void {
    const list = this.lists[key] as (number | number[])[];
    if (list.length === epoch) list.push(value);
    else if (list.length === epoch + 1) list[epoch] = value;
    else throw new Error(`progress log: ${key} has ${list.length} entries, cannot log epoch ${epoch}`);
    if (key === 'mean_fg_dice') {
      const previous = epoch > 0 ? this.lists.ema_fg_dice[epoch - 1] : undefined;
      this.log('ema_fg_dice', emaUpdate(previous, value as number, this.emaAlpha), epoch);
    }
  }

  /** Epochs with every list filled. */
  get completedEpochs(): number {
    return Math.min(...LOG_LIST_KEYS.map((k) => this.lists[k].length));
  }

  /**
   * Keeps the first `epochs` entries of every list: a checkpoint written mid-epoch (graceful stop)
   * or a best checkpoint older than the logs must not leave a half-logged epoch behind.
   */
  truncate(epochs: number): void {
    for (const key of LOG_LIST_KEYS) (this.lists[key] as unknown[]).length = Math.min(this.lists[key].length, epochs);
  }

  last(key: ScalarKey): number | undefined {
    const l = this.lists[key];
    return l.length > 0 ? l[l.length - 1] : undefined;
  }

  epochDurations(): number[] {
    const { epoch_start_timestamps: s, epoch_end_timestamps: e } = this.lists;
    return e.map((end, i) => end - s[i]);
  }

  snapshot(): TrainingLogLists {
    return structuredClone(this.lists);
  }
}
