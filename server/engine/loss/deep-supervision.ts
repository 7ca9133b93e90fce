// Deep supervision as nnU-Net v2 (REFERENCE §5.4, deep_supervision.py): one loss per decoder
// output against a target downsampled to that output's scale, weighted 1/2^i with the lowest
// resolution zeroed (1e-6 under DDP) and normalised to sum 1; zero-weight terms are not computed.
import { tidy, type Tensor } from '../torch.js';
import type { Loss } from './compound.js';

/**
 * nnU-Net's loss weights for n outputs (highest resolution first). Departs for n = 1, where
 * nnU-Net would divide by zero: the single output gets weight 1.
 */
export function deepSupervisionWeights(n: number, { ddp = false }: { ddp?: boolean } = {}): number[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`deep supervision needs at least one output, got ${n}`);
  if (n === 1) return [1];
  const w = Array.from({ length: n }, (_, i) => 1 / 2 ** i);
  w[n - 1] = ddp ? 1e-6 : 0;
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / total);
}

/**
 * Scale of each deep-supervision target relative to the patch: 1 / cumprod(strides) per axis,
 * without the last (lowest) stage, so the first entry is all ones.
 */
export function deepSupervisionScales(strides: (number | number[])[]): number[][] {
  const dims = Math.max(...strides.map((s) => (typeof s === 'number' ? 1 : s.length)));
  const product = new Array<number>(dims).fill(1);
  const scales: number[][] = [];
  for (const s of strides) {
    const per = typeof s === 'number' ? new Array<number>(dims).fill(s) : s;
    per.forEach((v, i) => (product[i] *= v));
    scales.push(product.map((p) => 1 / p));
  }
  return scales.slice(0, -1);
}

/** Σ w_i · loss(outputs[i], targets[i]) over the terms with w_i ≠ 0. */
export class DeepSupervisionWrapper {
  readonly weights: readonly number[] | null;

  /** weights null: every term weighted 1, as nnU-Net's default. */
  constructor(
    readonly loss: Loss,
    weights: readonly number[] | null = null,
  ) {
    if (weights !== null && !weights.some((w) => w !== 0)) throw new Error('deep supervision: at least one weight must be non-zero');
    this.weights = weights === null ? null : [...weights];
  }

  forward(outputs: Tensor[], targets: Tensor[]): Tensor {
    // nnU-Net zips silently; a length mismatch here is a wiring bug, so it is refused.
    if (outputs.length !== targets.length) throw new Error(`deep supervision: ${outputs.length} outputs but ${targets.length} targets`);
    if (this.weights !== null && this.weights.length !== outputs.length) {
      throw new Error(`deep supervision: ${outputs.length} outputs but ${this.weights.length} weights`);
    }
    return tidy(() => {
      let total: Tensor | null = null;
      for (let i = 0; i < outputs.length; i++) {
        const w = this.weights === null ? 1 : this.weights[i];
        if (w === 0) continue;
        const term = this.loss.forward(outputs[i], targets[i]).mul(w);
        total = total === null ? term : total.add(term);
      }
      if (total === null) throw new Error('deep supervision: no output has a non-zero weight');
      return total;
    });
  }
}
