// Mixed precision: autocast(fn) toggles libtorch's autocast for a synchronous scope, and
// GradScaler reproduces torch.cuda.amp.GradScaler (dynamic loss scaling, skipped steps on
// inf/NaN gradients) in TypeScript over the binding's ops.
import { lib } from './native.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';

export interface AutocastOptions {
  device?: 'cuda' | 'cpu';
  enabled?: boolean;
}

/** Runs fn under autocast (float16 on CUDA, bfloat16 on CPU, per libtorch's op lists). */
export function autocast<T>(fn: () => T, { device = 'cuda', enabled = true }: AutocastOptions = {}): T {
  const before = lib().autocastEnabled(device);
  lib().setAutocastEnabled(device, enabled);
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('autocast(fn): fn must be synchronous');
    return result;
  } finally {
    lib().setAutocastEnabled(device, before);
    if (!before) lib().autocastClearCache();
  }
}

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  enabled?: boolean;
}

/**
 * Usage per iteration, as nnU-Net: scaler.scale(loss).backward(); scaler.unscale(params);
 * clipGradNorm(params, 12); scaler.step(optimizer, params); scaler.update().
 */
export class GradScaler {
  scale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  growthTracker = 0;
  private unscaled = false;
  private foundInf = false;

  constructor(o: GradScalerOptions = {}) {
    this.scale = o.initScale ?? 2 ** 16;
    this.growthFactor = o.growthFactor ?? 2;
    this.backoffFactor = o.backoffFactor ?? 0.5;
    this.growthInterval = o.growthInterval ?? 2000;
    this.enabled = o.enabled ?? true;
  }

  /** loss * scale (a new tensor); the loss itself when disabled. */
  scaleLoss(loss: Tensor): Tensor {
    return this.enabled ? loss.mul(this.scale) : loss;
  }

  /** Divides the gradients by the scale in place and records whether any is inf/NaN. */
  unscale(params: Tensor[]): void {
    if (!this.enabled || this.unscaled) return;
    const inv = 1 / this.scale;
    this.foundInf = tidy(() => {
      let bad = false;
      for (const p of params) {
        const g = p.grad;
        if (!g) continue;
        g.mul_(inv);
        if (!bad && g.isfinite().all().item() === 0) bad = true;
      }
      return bad;
    });
    this.unscaled = true;
  }

  /** Steps the optimiser unless the gradients overflowed; returns whether it stepped. */
  step(optimizer: { step(): void }, params: Tensor[]): boolean {
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    this.unscale(params);
    if (this.foundInf) return false;
    optimizer.step();
    return true;
  }

  /** Backs the scale off after an overflow, grows it after growthInterval clean steps. */
  update(): void {
    if (!this.enabled) return;
    if (this.foundInf) {
      this.scale *= this.backoffFactor;
      this.growthTracker = 0;
    } else if (++this.growthTracker >= this.growthInterval) {
      this.scale *= this.growthFactor;
      this.growthTracker = 0;
    }
    this.unscaled = false;
    this.foundInf = false;
  }

  stateDict(): { scale: number; growthTracker: number } {
    return { scale: this.scale, growthTracker: this.growthTracker };
  }

  loadStateDict(s: { scale: number; growthTracker: number }): void {
    this.scale = s.scale;
    this.growthTracker = s.growthTracker;
  }
}
