// Autograd mode and gradient housekeeping: noGrad(fn) as torch.no_grad(), zeroGrad as
// optimizer.zero_grad(set_to_none=True). Grad mode is per thread in libtorch, and our
// JS runs on one thread, so a synchronous scope is exact.
import { lib } from './native.js';
import type { Tensor } from './tensor.js';

function scoped<T>(enabled: boolean, fn: () => T): T {
  const before = lib().gradEnabled();
  lib().setGradEnabled(enabled);
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('noGrad/enableGrad(fn): fn must be synchronous');
    return result;
  } finally {
    lib().setGradEnabled(before);
  }
}

/** Runs fn with gradient recording off (inference, optimiser updates, EMA bookkeeping). */
export function noGrad<T>(fn: () => T): T {
  return scoped(false, fn);
}

/** Runs fn with gradient recording on, even inside noGrad(). */
export function enableGrad<T>(fn: () => T): T {
  return scoped(true, fn);
}

export function isGradEnabled(): boolean {
  return lib().gradEnabled();
}

/** Clears the gradients of params: dropped (default, as PyTorch 2) or zeroed in place. */
export function zeroGrad(params: Tensor[], setToNone = true): void {
  lib().zeroGrad(params.map((p) => p.handle), setToNone);
}
