// torch.nn.functional equivalents over the binding: convolutions, normalisation, activations,
// losses, padding, interpolation and spatial transforms (affine_grid + grid_sample). Argument
// names and defaults follow PyTorch so nnU-Net's modules translate line by line.
import { lib, type Handle } from './native.js';
import { Tensor } from './tensor.js';

type PerDim = number | number[];
const wrap = (h: Handle): Tensor => Tensor.fromHandle(h);

function perDim(v: PerDim, n: number, name: string): number[] {
  if (typeof v === 'number') return new Array<number>(n).fill(v);
  if (v.length !== n) throw new Error(`${name}: expected ${n} values (one per spatial dim), got ${v.length}`);
  return v;
}

export interface ConvOptions {
  bias?: Tensor | null;
  stride?: PerDim;
  padding?: PerDim;
  dilation?: PerDim;
  groups?: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: PerDim;
}

function convolution(name: string, input: Tensor, weight: Tensor, o: ConvTransposeOptions, transposed: boolean): Tensor {
  const n = weight.ndim - 2;
  return wrap(
    lib().conv(
      input.handle,
      weight.handle,
      o.bias ? o.bias.handle : null,
      perDim(o.stride ?? 1, n, `${name} stride`),
      perDim(o.padding ?? 0, n, `${name} padding`),
      perDim(o.dilation ?? 1, n, `${name} dilation`),
      transposed,
      perDim(o.outputPadding ?? 0, n, `${name} outputPadding`),
      o.groups ?? 1,
    ),
  );
}

function expectRank(name: string, weight: Tensor, rank: number): void {
  if (weight.ndim !== rank) throw new Error(`${name}: weight must have ${rank} dims, got [${weight.shape.join(', ')}]`);
}

/** input [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW]. */
export function conv2d(input: Tensor, weight: Tensor, o: ConvOptions = {}): Tensor {
  expectRank('conv2d', weight, 4);
  return convolution('conv2d', input, weight, o, false);
}
/** input [N, Cin, D, H, W], weight [Cout, Cin/groups, kD, kH, kW]. */
export function conv3d(input: Tensor, weight: Tensor, o: ConvOptions = {}): Tensor {
  expectRank('conv3d', weight, 5);
  return convolution('conv3d', input, weight, o, false);
}
/** weight [Cin, Cout/groups, kH, kW]. */
export function convTranspose2d(input: Tensor, weight: Tensor, o: ConvTransposeOptions = {}): Tensor {
  expectRank('convTranspose2d', weight, 4);
  return convolution('convTranspose2d', input, weight, o, true);
}
/** weight [Cin, Cout/groups, kD, kH, kW]. */
export function convTranspose3d(input: Tensor, weight: Tensor, o: ConvTransposeOptions = {}): Tensor {
  expectRank('convTranspose3d', weight, 5);
  return convolution('convTranspose3d', input, weight, o, true);
}

/** Per-sample, per-channel normalisation over the spatial dims (no running stats, as nnU-Net). */
export function instanceNorm(input: Tensor, o: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {}): Tensor {
  return wrap(lib().instanceNorm(input.handle, o.weight?.handle ?? null, o.bias?.handle ?? null, o.eps ?? 1e-5));
}

export function groupNorm(
  input: Tensor,
  groups: number,
  o: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {},
): Tensor {
  return wrap(lib().groupNorm(input.handle, groups, o.weight?.handle ?? null, o.bias?.handle ?? null, o.eps ?? 1e-5));
}

export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  o: { weight?: Tensor | null; bias?: Tensor | null; training?: boolean; momentum?: number; eps?: number } = {},
): Tensor {
  return wrap(
    lib().batchNorm(
      input.handle,
      runningMean?.handle ?? null,
      runningVar?.handle ?? null,
      o.weight?.handle ?? null,
      o.bias?.handle ?? null,
      o.training ?? false,
      o.momentum ?? 0.1,
      o.eps ?? 1e-5,
    ),
  );
}

export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor => x.leakyRelu(negativeSlope);
export const relu = (x: Tensor): Tensor => x.relu();
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const softmax = (x: Tensor, dim: number): Tensor => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim: number): Tensor => x.logSoftmax(dim);

export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  return wrap(lib().dropout(x.handle, p, training));
}

/** As F.pad: pads = [lastLeft, lastRight, prevLeft, prevRight, ...]; modes constant, reflect, replicate. */
export function pad(x: Tensor, pads: number[], mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0): Tensor {
  return wrap(lib().pad(x.handle, pads, mode, value));
}

/** int64 labels -> int64 one-hot with a new last dim of numClasses (-1: max label + 1). */
export function oneHot(labels: Tensor, numClasses = -1): Tensor {
  return wrap(lib().oneHot(labels.handle, numClasses));
}

export type Reduction = 'none' | 'mean' | 'sum';

/** logProbs [N, C, ...], target int64 [N, ...]; targets equal to ignoreIndex add nothing. */
export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number } = {},
): Tensor {
  return wrap(lib().nllLoss(logProbs.handle, target.handle, o.weight?.handle ?? null, o.reduction ?? 'mean', o.ignoreIndex ?? -100));
}

/** logits [N, C, ...], target int64 [N, ...]: log_softmax + nll_loss in one kernel. */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  return wrap(
    lib().crossEntropy(
      logits.handle,
      target.handle,
      o.weight?.handle ?? null,
      o.reduction ?? 'mean',
      o.ignoreIndex ?? -100,
      o.labelSmoothing ?? 0,
    ),
  );
}

export function binaryCrossEntropyWithLogits(
  logits: Tensor,
  target: Tensor,
  o: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {},
): Tensor {
  return wrap(
    lib().bceWithLogits(logits.handle, target.handle, o.weight?.handle ?? null, o.posWeight?.handle ?? null, o.reduction ?? 'mean'),
  );
}

export function mseLoss(input: Tensor, target: Tensor): Tensor {
  const d = input.sub(target);
  const sq = d.square();
  d.dispose();
  const m = sq.mean();
  sq.dispose();
  return m;
}

export type InterpolateMode = 'nearest' | 'linear' | 'bilinear' | 'trilinear' | 'bicubic' | 'area';

/** As F.interpolate (recompute_scale_factor unset): give size or scaleFactor, not both. */
export function interpolate(
  x: Tensor,
  o: { size?: PerDim; scaleFactor?: PerDim; mode?: InterpolateMode; alignCorners?: boolean },
): Tensor {
  const n = x.ndim - 2;
  const size = o.size === undefined ? null : perDim(o.size, n, 'interpolate size');
  const scales = o.scaleFactor === undefined ? null : perDim(o.scaleFactor, n, 'interpolate scaleFactor');
  return wrap(lib().interpolate(x.handle, o.mode ?? 'nearest', size, scales, o.alignCorners ?? false));
}

/** theta [N, 2, 3] or [N, 3, 4] -> sampling grid [N, (D,) H, W, 2|3] for `size` [N, C, (D,) H, W]. */
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  return wrap(lib().affineGrid(theta.handle, size, alignCorners));
}

export function gridSample(
  input: Tensor,
  grid: Tensor,
  o: { mode?: 'bilinear' | 'nearest' | 'bicubic'; paddingMode?: 'zeros' | 'border' | 'reflection'; alignCorners?: boolean } = {},
): Tensor {
  return wrap(lib().gridSample(input.handle, grid.handle, o.mode ?? 'bilinear', o.paddingMode ?? 'zeros', o.alignCorners ?? false));
}

export function maxPool(x: Tensor, kernel: PerDim, stride?: PerDim, padding: PerDim = 0): Tensor {
  const n = x.ndim - 2;
  const k = perDim(kernel, n, 'maxPool kernel');
  return wrap(lib().maxPool(x.handle, k, perDim(stride ?? k, n, 'maxPool stride'), perDim(padding, n, 'maxPool padding')));
}

export function avgPool(x: Tensor, kernel: PerDim, stride?: PerDim, padding: PerDim = 0): Tensor {
  const n = x.ndim - 2;
  const k = perDim(kernel, n, 'avgPool kernel');
  return wrap(lib().avgPool(x.handle, k, perDim(stride ?? k, n, 'avgPool stride'), perDim(padding, n, 'avgPool padding')));
}
