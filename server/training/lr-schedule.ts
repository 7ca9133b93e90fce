// nnU-Net v2's PolyLRScheduler (training/lr_scheduler/polylr.py): the learning rate of epoch e
// (0-based) is initial · (1 − e/numEpochs)^exponent, set at the start of the epoch. A pure
// function of the epoch, so a resumed run gets exactly the schedule of an uninterrupted one.

export interface PolySchedule {
  initialLr: number;
  numEpochs: number;
  exponent: number;
}

/** The learning rate of `epoch`; e.g. 3 epochs → 0.01, 0.00694, 0.00372. */
export function polyLr(epoch: number, s: PolySchedule): number {
  if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
  // Past the end (a checkpoint from a longer run) the base would go negative; nnU-Net would
  // produce NaN there, we hold the rate at 0 instead.
  const base = Math.max(0, 1 - epoch / s.numEpochs);
  return s.initialLr * base ** s.exponent;
}

/** The whole schedule, for logs and tests. */
export function polySchedule(s: PolySchedule): number[] {
  return Array.from({ length: s.numEpochs }, (_, e) => polyLr(e, s));
}
