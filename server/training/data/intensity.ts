// Intensity augmentations of batchgeneratorsv2 as nnU-Net v2 configures them (REFERENCE §5.3 #3–9),
// on libtorch tensors of one sample (C, ...S) on the training device. Each function takes already
// drawn parameters (the decisions live in augment.ts) and returns a new tensor; per-channel
// statistics stay on the device as tensors, so no transform waits for the device.
import { F, randn, tensor, tidy, type Device, type Tensor, cat } from '../../engine/torch.js';
import { roundHalfEven } from '../../planning/numeric.js';
import { resizeNearestExact } from './spatial.js';

const spatialDims = (t: Tensor): number[] => t.shape.slice(1).map((_, i) => i + 1);

/** Replaces the listed channels of img by fn(channel (1, ...S)); the others are kept bit for bit. */
function perChannel(img: Tensor, channels: readonly number[], fn: (x: Tensor, index: number) => Tensor): Tensor {
  if (channels.length === 0) return img.clone();
  return tidy(() => {
    const parts: Tensor[] = [];
    for (let c = 0; c < img.shape[0]; c++) {
      const k = channels.indexOf(c);
      const x = img.narrow(0, c, 1);
      parts.push(k < 0 ? x : fn(x, k));
    }
    return cat(parts, 0);
  });
}

/** GaussianNoise: x + N(0, σ²) per voxel and channel, one σ for all channels. */
export function gaussianNoise(img: Tensor, sigma: number): Tensor {
  return tidy(() => img.add(randn(img.shape, { device: img.device as Device }).mul(sigma)));
}

/** Python round() to the nearest odd integer, as batchgeneratorsv2's _round_to_nearest_odd. */
function roundToNearestOdd(n: number): number {
  const r = roundHalfEven(n);
  if (Math.abs(r % 2) === 1) return r;
  return n - r >= 0 ? r + 1 : r - 1;
}

/** The normalised 1D Gaussian kernel of GaussianBlur: size = nearest odd to 6σ + 0.5. */
export function gaussianKernel(sigma: number): Float32Array {
  const size = roundToNearestOdd(sigma * 6 + 0.5);
  const half = (size - 1) / 2;
  const k = new Float32Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = -half + i;
    k[i] = Math.exp(-0.5 * (x / sigma) ** 2);
    sum += k[i];
  }
  return k.map((v) => v / sum);
}

/** Separable Gaussian blur of a (1, ...S) channel with one σ per axis, reflect padding. */
function blurChannel(x: Tensor, sigmas: readonly number[]): Tensor {
  return tidy(() => {
    const nd = x.ndim - 1;
    let out = x.unsqueeze(0);
    sigmas.forEach((sigma, d) => {
      const k = gaussianKernel(sigma);
      const half = (k.length - 1) / 2;
      const shape = Array.from({ length: nd }, (_, i) => (i === d ? k.length : 1));
      const weight = tensor(k, [1, 1, ...shape]).to(x.device as Device);
      const pads = new Array<number>(2 * nd).fill(0);
      pads[2 * (nd - 1 - d)] = half;
      pads[2 * (nd - 1 - d) + 1] = half;
      // reflect needs the axis longer than the padding; thin axes (dummy-2D) fall back to replicate.
      const mode = out.shape[d + 2] > half ? 'reflect' : 'replicate';
      const padded = F.pad(out, pads, mode);
      out = nd === 3 ? F.conv3d(padded, weight) : F.conv2d(padded, weight);
    });
    return out.squeeze(0);
  });
}

/** GaussianBlur of the chosen channels, sigmas[k] being the per-axis σ of channels[k]. */
export function gaussianBlur(img: Tensor, channels: readonly number[], sigmas: readonly (readonly number[])[]): Tensor {
  return perChannel(img, channels, (x, k) => blurChannel(x, sigmas[k]));
}

/** MultiplicativeBrightness: x · f per channel (factors for every channel). */
export function multiplicativeBrightness(img: Tensor, factors: readonly number[]): Tensor {
  return tidy(() => {
    const f = tensor(Float32Array.from(factors), [factors.length, ...img.shape.slice(1).map(() => 1)]).to(img.device as Device);
    return img.mul(f);
  });
}

/** Contrast with preserve_range: (x − mean)·f + mean, clipped to the channel's original [min, max]. */
export function contrast(img: Tensor, factors: readonly number[]): Tensor {
  return perChannel(
    img,
    factors.map((_, c) => c),
    (x, c) =>
      tidy(() => {
        const dims = spatialDims(x);
        const mean = x.mean(dims, true);
        const lo = x.min(dims, true);
        const hi = x.max(dims, true);
        return x.sub(mean).mul(factors[c]).add(mean).maximum(lo).minimum(hi);
      }),
  );
}

/**
 * SimulateLowResolution: each chosen channel is downsampled (nearest-exact) to round(shape·zoom)
 * on every axis except `ignoreAxes`, then upsampled back (bi/trilinear, align_corners=False).
 */
export function simulateLowResolution(img: Tensor, channels: readonly number[], zooms: readonly number[], ignoreAxes: readonly number[]): Tensor {
  const shape = img.shape.slice(1);
  return perChannel(img, channels, (x, k) =>
    tidy(() => {
      const small = shape.map((n, d) => (ignoreAxes.includes(d) ? n : roundHalfEven(n * zooms[k])));
      const down = resizeNearestExact(x, small);
      return F.interpolate(down.unsqueeze(0), { size: shape, mode: 'linear', alignCorners: false }).squeeze(0);
    }),
  );
}

/**
 * Gamma (retain_stats): optionally invert, x = ((x − min)/max(range, 1e-7))^γ · range + min, then
 * restore the channel's mean and (unbiased) std, and invert back.
 */
export function gamma(img: Tensor, gammas: readonly number[], invert: boolean, retainStats = true): Tensor {
  return perChannel(
    img,
    gammas.map((_, c) => c),
    (x0, c) =>
      tidy(() => {
        const dims = spatialDims(x0);
        let x = invert ? x0.neg() : x0;
        const mean = x.mean(dims, true);
        const std = x.std(dims, { keepdim: true });
        const lo = x.min(dims, true);
        const range = x.max(dims, true).sub(lo);
        x = x.sub(lo).div(range.clamp(1e-7)).pow(gammas[c]).mul(range).add(lo);
        if (retainStats) {
          const m2 = x.mean(dims, true);
          const s2 = x.std(dims, { keepdim: true });
          x = x.sub(m2).mul(std.div(s2.clamp(1e-7))).add(mean);
        }
        return invert ? x.neg() : x;
      }),
  );
}
