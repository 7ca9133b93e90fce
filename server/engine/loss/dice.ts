// Soft Dice loss with the semantics of nnU-Net v2's MemoryEfficientSoftDiceLoss (REFERENCE §5.5):
// nonlinearity, optional background drop, per-class tp/fp/fn sums (optionally over the batch too),
// dc = (2I + smooth) / max(P + G + smooth, 1e-8), loss = −mean(dc). Defaults are the trainer's
// values (smooth 1e-5, no background), not the class's (smooth 1, background included).
import { arange, noGrad, tidy, type Device, type Tensor } from '../torch.js';

export type DiceNonlin = 'softmax' | 'sigmoid' | null;

export interface SoftDiceOptions {
  /** Applied to the network output first: softmax over channels (labels), sigmoid (regions), or none. Default softmax. */
  nonlin?: DiceNonlin;
  /** Sum intersections and volumes over the batch before the ratio (nnU-Net's `batch_dice`, from the plans). Default false. */
  batchDice?: boolean;
  /** Keep channel 0 (nnU-Net's `do_bg`): false for label training, true for regions. Default false. */
  doBg?: boolean;
  /** Added to numerator and denominator. Default 1e-5, the trainer's value. */
  smooth?: number;
  /** [B, 1, ...spatial], true/1 where the voxel counts (ignore label excluded). */
  lossMask?: Tensor | null;
}

/**
 * Target as a one-hot map with the output's shape. A target that already has the output's shape is
 * taken as one-hot (regions), as nnU-Net does; otherwise it is a label map [B, 1, ...] or [B, ...].
 * Labels outside [0, C) give an all-zero row here (nnU-Net's scatter_ would raise); the CE term of
 * the compound loss rejects them.
 */
export function oneHotTarget(target: Tensor, outputShape: number[], device: string): Tensor {
  return noGrad(() =>
    tidy(() => {
      let y = target;
      if (y.ndim !== outputShape.length) y = y.reshape([y.shape[0], 1, ...y.shape.slice(1)]);
      if (y.shape.every((d, i) => d === outputShape[i])) return y;
      if (y.shape[1] !== 1) {
        throw new Error(
          `soft Dice: target [${target.shape.join(', ')}] is neither a label map [B, 1, ...] nor one-hot like the output [${outputShape.join(', ')}]`,
        );
      }
      const classes = arange(0, outputShape[1], 1, { device: device as Device }).reshape([1, outputShape[1], ...outputShape.slice(2).map(() => 1)]);
      // Comparing against 0..C-1 broadcasts the label map into a boolean one-hot without scatter.
      return y.eq(classes);
    }),
  );
}

/** nnU-Net's MemoryEfficientSoftDiceLoss: output [B, C, ...spatial], target label map or one-hot; a scalar. */
export function softDiceLoss(output: Tensor, target: Tensor, o: SoftDiceOptions = {}): Tensor {
  const nonlin = o.nonlin === undefined ? 'softmax' : o.nonlin;
  const smooth = o.smooth ?? 1e-5;
  const doBg = o.doBg ?? false;
  return tidy(() => {
    let x = nonlin === 'softmax' ? output.softmax(1) : nonlin === 'sigmoid' ? output.sigmoid() : output;
    let y = oneHotTarget(target, output.shape, output.device);
    if (!doBg) {
      x = x.slice(1, 1);
      y = y.slice(1, 1);
    }
    const axes = Array.from({ length: output.ndim - 2 }, (_, i) => i + 2);
    const mask = o.lossMask ?? null;
    // The target volume carries no gradient; nnU-Net computes it under no_grad too.
    let sumGt = noGrad(() => (mask ? y.mul(mask) : y).sum(axes));
    let intersect = (mask ? x.mul(y).mul(mask) : x.mul(y)).sum(axes);
    let sumPred = (mask ? x.mul(mask) : x).sum(axes);
    if (o.batchDice) {
      intersect = intersect.sum(0);
      sumPred = sumPred.sum(0);
      sumGt = sumGt.sum(0);
    }
    const dc = intersect.mul(2).add(smooth).div(sumGt.add(sumPred).add(smooth).clamp(1e-8));
    return dc.mean().neg();
  });
}
