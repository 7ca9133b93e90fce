// nnU-Net's online validation metric, the "pseudo Dice" (REFERENCE §5.6, validation_step and
// on_validation_epoch_end): hard TP/FP/FN per class on the full-resolution output, summed over all
// validation batches, then Dice per class (NaN where a class never occurs) and its nan-mean; the
// EMA of that mean picks checkpoint_best.
import { arange, noGrad, tidy, where, type Device, type Tensor } from '../engine/torch.js';

export interface HardCounts {
  tp: number[];
  fp: number[];
  fn: number[];
}

export interface CountOptions {
  hasRegions: boolean;
  /** Label mode: the ignore label, whose voxels count for nothing. */
  ignoreLabel?: number | null;
  /** Region mode: the target's last channel marks ignored voxels. */
  regionIgnoreChannel?: boolean;
}

const toNumbers = (t: Tensor): number[] => Array.from(t.to('float64').data() as Float64Array);

/**
 * Hard counts of one batch: output logits [B, C, ...], target label map [B, 1, ...] (labels) or
 * region channels [B, R(+1), ...]. Labels: one-hot of the argmax, background dropped. Regions:
 * sigmoid > 0.5 per channel. Summed over the batch and all spatial axes.
 */
export function hardCounts(output: Tensor, target: Tensor, o: CountOptions): HardCounts {
  return noGrad(() =>
    tidy(() => {
      const C = output.shape[1];
      const spatial = output.ndim - 2;
      const axes = [0, ...Array.from({ length: spatial }, (_, i) => i + 2)];
      let pred: Tensor;
      let gt: Tensor;
      let mask: Tensor | null = null;
      if (o.hasRegions) {
        let t = target;
        if (o.regionIgnoreChannel) {
          const last = t.slice(1, -1);
          mask = last.dtype === 'bool' ? last.logicalNot() : last.eq(0);
          t = t.slice(1, 0, -1);
        }
        pred = output.sigmoid().gt(0.5);
        gt = t.dtype === 'bool' ? t : t.ne(0);
      } else {
        const classes = arange(0, C, 1, { device: output.device as Device }).reshape([1, C, ...new Array<number>(spatial).fill(1)]);
        pred = output.argmax(1, true).eq(classes);
        let t = target;
        if (o.ignoreLabel !== null && o.ignoreLabel !== undefined) {
          mask = target.ne(o.ignoreLabel);
          t = where(mask, target, 0);
        }
        gt = t.eq(classes);
      }
      const notPred = pred.logicalNot();
      const notGt = gt.logicalNot();
      let tp = pred.logicalAnd(gt);
      let fp = pred.logicalAnd(notGt);
      let fn = notPred.logicalAnd(gt);
      if (mask) {
        tp = tp.logicalAnd(mask);
        fp = fp.logicalAnd(mask);
        fn = fn.logicalAnd(mask);
      }
      const first = o.hasRegions ? 0 : 1;
      const pick = (x: Tensor) => toNumbers(x.sum(axes)).slice(first);
      return { tp: pick(tp), fp: pick(fp), fn: pick(fn) };
    }),
  );
}

/** Sums the counts of several batches (nnU-Net's collate_outputs + np.sum). */
export function sumCounts(batches: HardCounts[]): HardCounts {
  if (batches.length === 0) return { tp: [], fp: [], fn: [] };
  const n = batches[0].tp.length;
  const out: HardCounts = { tp: new Array(n).fill(0), fp: new Array(n).fill(0), fn: new Array(n).fill(0) };
  for (const b of batches) {
    for (let i = 0; i < n; i++) {
      out.tp[i] += b.tp[i];
      out.fp[i] += b.fp[i];
      out.fn[i] += b.fn[i];
    }
  }
  return out;
}

/** 2TP / (2TP + FP + FN) per class; NaN where the denominator is 0 (numpy's 0/0). */
export function dicePerClass(c: HardCounts): number[] {
  return c.tp.map((tp, i) => {
    const denominator = 2 * tp + c.fp[i] + c.fn[i];
    return denominator === 0 ? NaN : (2 * tp) / denominator;
  });
}

/** numpy's nanmean: NaN when every value is NaN. */
export function nanmean(values: number[]): number {
  const finite = values.filter((v) => !Number.isNaN(v));
  return finite.length === 0 ? NaN : finite.reduce((a, b) => a + b, 0) / finite.length;
}

/** ema_0 = dice_0; ema_t = alpha·ema_{t−1} + (1 − alpha)·dice_t (nnunet_logger.py). */
export function emaUpdate(previous: number | undefined, value: number, alpha = 0.9): number {
  return previous === undefined ? value : alpha * previous + (1 - alpha) * value;
}
