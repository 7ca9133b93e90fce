// The training losses nnU-Net v2 builds in `build_loss` (REFERENCE §5.5): DiceCELoss as
// DC_and_CE_loss (labels: CE + soft Dice without background) and DiceBCELoss as DC_and_BCE_loss
// (regions: BCE with logits + sigmoid soft Dice), with their ignore-label handling kept exactly,
// including the region BCE normalised by the number of unmasked voxels (not voxels × regions).
import { F, tidy, where, zeros, type Device, type Tensor } from '../torch.js';
import { robustCrossEntropy } from './cross-entropy.js';
import { softDiceLoss } from './dice.js';

/** A loss over one network output and its target, returning a scalar with autograd. */
export interface Loss {
  forward(output: Tensor, target: Tensor): Tensor;
}

export interface DiceCEOptions {
  /** nnU-Net's configuration `batch_dice` (from the plans). */
  batchDice: boolean;
  /** The dataset's ignore label, or null/undefined when it has none. */
  ignoreLabel?: number | null;
  weightCE?: number;
  weightDice?: number;
  smooth?: number;
}

const weighted = (t: Tensor, w: number): Tensor => (w === 1 ? t : t.mul(w));

/** L = wCE·CE + wDice·(−softDice), with the target a label map [B, 1, ...spatial]. */
export class DiceCELoss implements Loss {
  readonly batchDice: boolean;
  readonly ignoreLabel: number | null;
  readonly weightCE: number;
  readonly weightDice: number;
  readonly smooth: number;

  constructor(o: DiceCEOptions) {
    this.batchDice = o.batchDice;
    this.ignoreLabel = o.ignoreLabel ?? null;
    this.weightCE = o.weightCE ?? 1;
    this.weightDice = o.weightDice ?? 1;
    this.smooth = o.smooth ?? 1e-5;
  }

  forward(output: Tensor, target: Tensor): Tensor {
    return tidy(() => {
      let targetDice = target;
      let mask: Tensor | null = null;
      let anyAnnotated = true;
      if (this.ignoreLabel !== null) {
        if (target.ndim !== output.ndim || target.shape[1] !== 1) {
          throw new Error('DiceCELoss: the ignore label needs a label-map target [B, 1, ...spatial], not a one-hot one');
        }
        mask = target.ne(this.ignoreLabel);
        // Ignored voxels get label 0 for the Dice one-hot; the mask removes them from every sum.
        targetDice = where(mask, target, 0);
        // A host sync, as nnU-Net's `num_fg > 0`: CE over no annotated voxel would be 0/0.
        anyAnnotated = mask.any().item() !== 0;
      }
      const terms: Tensor[] = [];
      if (this.weightDice !== 0) {
        const dc = softDiceLoss(output, targetDice, { nonlin: 'softmax', batchDice: this.batchDice, doBg: false, smooth: this.smooth, lossMask: mask });
        terms.push(weighted(dc, this.weightDice));
      }
      if (this.weightCE !== 0 && anyAnnotated) {
        const ce = robustCrossEntropy(output, target, { ignoreIndex: this.ignoreLabel ?? -100 });
        terms.push(weighted(ce, this.weightCE));
      }
      return sumTerms(terms, output);
    });
  }
}

export interface DiceBCEOptions {
  batchDice: boolean;
  /** The target's last channel marks ignored voxels (nnU-Net's `use_ignore_label`). */
  useIgnoreLabel?: boolean;
  weightCE?: number;
  weightDice?: number;
  smooth?: number;
}

/** L = wCE·BCE + wDice·(−softDice over sigmoids, all channels), target one-hot regions [B, R(+1), ...spatial]. */
export class DiceBCELoss implements Loss {
  readonly batchDice: boolean;
  readonly useIgnoreLabel: boolean;
  readonly weightCE: number;
  readonly weightDice: number;
  readonly smooth: number;

  constructor(o: DiceBCEOptions) {
    this.batchDice = o.batchDice;
    this.useIgnoreLabel = o.useIgnoreLabel ?? false;
    this.weightCE = o.weightCE ?? 1;
    this.weightDice = o.weightDice ?? 1;
    this.smooth = o.smooth ?? 1e-5;
  }

  forward(output: Tensor, target: Tensor): Tensor {
    return tidy(() => {
      let regions = target;
      let mask: Tensor | null = null;
      if (this.useIgnoreLabel) {
        const last = target.slice(1, -1);
        mask = last.dtype === 'bool' ? last.logicalNot() : last.ne(1);
        regions = target.slice(1, 0, -1);
      }
      const terms: Tensor[] = [];
      // nnU-Net always evaluates both terms here (weights only scale them).
      const dc = softDiceLoss(output, regions, { nonlin: 'sigmoid', batchDice: this.batchDice, doBg: true, smooth: this.smooth, lossMask: mask });
      const regionsFloat = regions.dtype === output.dtype ? regions : regions.to(output.dtype);
      let bce: Tensor;
      if (mask) {
        const perVoxel = F.binaryCrossEntropyWithLogits(output, regionsFloat, { reduction: 'none' });
        // Σ over B·R·voxels divided by the count of unmasked B·voxels, as nnU-Net: R times a plain mean.
        bce = perVoxel.mul(mask).sum().div(mask.sum().to(output.dtype).clamp(1e-8));
      } else {
        bce = F.binaryCrossEntropyWithLogits(output, regionsFloat);
      }
      terms.push(weighted(bce, this.weightCE), weighted(dc, this.weightDice));
      return sumTerms(terms, output);
    });
  }
}

function sumTerms(terms: Tensor[], like: Tensor): Tensor {
  if (terms.length === 0) return zeros([], { dtype: like.dtype, device: like.device as Device });
  return terms.slice(1).reduce((acc, t) => acc.add(t), terms[0]);
}
