// SGD with momentum, Nesterov and weight decay (torch.optim.SGD's update, run natively per
// parameter) and clip_grad_norm_. Momentum buffers are ordinary tensors owned by the optimiser,
// readable and writable so checkpoints can save and restore them.
import { lib } from './native.js';
import { zeroGrad } from './autograd.js';
import { Tensor } from './tensor.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD {
  readonly params: Tensor[];
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  /** One per parameter; null until its first step (torch creates it from the first update). */
  momentumBuffers: (Tensor | null)[];

  constructor(params: Tensor[], o: SGDOptions) {
    this.params = params;
    this.lr = o.lr;
    this.momentum = o.momentum ?? 0;
    this.dampening = o.dampening ?? 0;
    this.weightDecay = o.weightDecay ?? 0;
    this.nesterov = o.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error('SGD: Nesterov momentum requires a momentum and zero dampening');
    }
    this.momentumBuffers = params.map(() => null);
  }

  /**
   * One update of every parameter that has a gradient:
   * d = g + wd*p; buf = d (first step) or m*buf + (1 - dampening)*d;
   * d = nesterov ? d + m*buf : buf; p -= lr*d.
   */
  step(): void {
    const created = lib().sgdStep(
      this.params.map((p) => p.handle),
      this.momentumBuffers.map((b) => (b ? b.handle : null)),
      this.lr,
      this.momentum,
      this.dampening,
      this.weightDecay,
      this.nesterov,
    );
    created.forEach((h, i) => {
      // Buffers belong to the optimiser, never to the tidy() scope the step ran in.
      if (h !== null) this.momentumBuffers[i] = Tensor.fromHandle(h, false);
    });
  }

  zeroGrad(setToNone = true): void {
    zeroGrad(this.params, setToNone);
  }

  /** Replaces the momentum buffers (from a checkpoint); the optimiser takes ownership of them. */
  loadMomentumBuffers(buffers: (Tensor | null)[]): void {
    if (buffers.length !== this.params.length) {
      throw new Error(`SGD: ${buffers.length} momentum buffers for ${this.params.length} parameters`);
    }
    for (const b of this.momentumBuffers) if (b && !buffers.includes(b)) b.dispose();
    this.momentumBuffers = buffers.map((b) => (b ? b.keep() : null));
  }

  /** Releases the momentum buffers (not the parameters). */
  dispose(): void {
    for (const b of this.momentumBuffers) b?.dispose();
    this.momentumBuffers = this.params.map(() => null);
  }
}

/**
 * As torch.nn.utils.clip_grad_norm_: scales the gradients in place so their joint norm is at most
 * maxNorm (coefficient maxNorm / (norm + 1e-6), capped at 1) and returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  return lib().clipGradNorm(
    params.map((p) => p.handle),
    maxNorm,
    normType,
  );
}
