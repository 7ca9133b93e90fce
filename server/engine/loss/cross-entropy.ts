// Cross entropy over logits as nnU-Net v2's RobustCrossEntropyLoss: the target may carry a channel
// dimension of 1 (dropped) and any numeric dtype (cast to int64); mean over the voxels whose
// label is not ignoreIndex (PyTorch's semantics: NaN when every voxel is ignored).
import { F, tidy, type Tensor } from '../torch.js';

export interface CrossEntropyOptions {
  /** Voxels with this label add nothing (nnU-Net passes the dataset's ignore label). Default −100, as PyTorch. */
  ignoreIndex?: number;
}

/** logits [B, C, ...spatial], target [B, 1, ...spatial] or [B, ...spatial]; a scalar. */
export function robustCrossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return tidy(() => {
    let t = target;
    if (t.ndim === logits.ndim) {
      if (t.shape[1] !== 1) throw new Error(`cross entropy: target [${t.shape.join(', ')}] must have a channel dimension of 1`);
      t = t.squeeze(1);
    }
    if (t.dtype !== 'int64') t = t.to('int64');
    return F.crossEntropy(logits, t, { ignoreIndex: o.ignoreIndex ?? -100 });
  });
}
