// The label-side transforms at the end of nnU-Net v2's pipeline (REFERENCE §5.3 #11–17, §5.4):
// masking of mask-normalised channels, −1 → 0, the cascade's previous-stage one-hot input with its
// random morphology and component removal, region channels (+ ignore), deep-supervision targets.
import { F, cat, tensor, tidy, type Device, type Tensor } from '../../engine/torch.js';
import { connectedComponents } from '../../evaluation/connected-components.js';
import { resizeNearestExact } from './spatial.js';

/** MaskImage: the listed image channels become 0 where seg channel 0 is negative (outside the nonzero mask). */
export function maskImage(img: Tensor, seg: Tensor, channels: readonly number[]): Tensor {
  if (channels.length === 0) return img.clone();
  return tidy(() => {
    const outside = seg.narrow(0, 0, 1).lt(0);
    const parts: Tensor[] = [];
    for (let c = 0; c < img.shape[0]; c++) {
      const x = img.narrow(0, c, 1);
      parts.push(channels.includes(c) ? x.maskedFill(outside, 0) : x);
    }
    return cat(parts, 0);
  });
}

/** RemoveLabel(−1 → 0) on every segmentation channel. */
export function removeNegativeLabel(seg: Tensor): Tensor {
  return seg.maskedFill(seg.eq(-1), 0);
}

/** MoveSegAsOneHotToData: seg channel 1 (previous stage) → one float channel per foreground label, appended to the image. */
export function appendPreviousStageOneHot(img: Tensor, seg: Tensor, foregroundLabels: readonly number[]): { img: Tensor; seg: Tensor } {
  return tidy(() => {
    const prev = seg.narrow(0, 1, 1);
    const onehot = foregroundLabels.map((l) => prev.eq(l).to('float32'));
    return { img: cat([img, ...onehot], 0), seg: seg.narrow(0, 0, 1).contiguous() };
  });
}

export type BinaryOperator = 'dilation' | 'erosion' | 'closing' | 'opening';
export const BINARY_OPERATORS: BinaryOperator[] = ['dilation', 'erosion', 'closing', 'opening'];

/**
 * A ball (3D) or disk (2D) of radius r on the integer grid: offsets with |d|² ≤ r². scikit-image
 * builds a non-integer r on a half-voxel-shifted grid; we keep the kernel centred (odd size).
 */
export function ballKernel(radius: number, nd: number): { data: Float32Array; size: number } {
  const r = Math.floor(radius);
  const size = 2 * r + 1;
  const data = new Float32Array(size ** nd);
  for (let i = 0; i < data.length; i++) {
    let rest = i;
    let d2 = 0;
    for (let a = 0; a < nd; a++) {
      const off = (rest % size) - r;
      rest = Math.floor(rest / size);
      d2 += off * off;
    }
    data[i] = d2 <= radius * radius ? 1 : 0;
  }
  return { data, size };
}

/** Binary dilation of a 0/1 channel (1, ...S) by convolution with the structuring element (zero padding). */
function dilate(x: Tensor, kernel: Tensor, r: number): Tensor {
  return tidy(() => {
    const conv = x.ndim === 4 ? F.conv3d(x.unsqueeze(0), kernel, { padding: r }) : F.conv2d(x.unsqueeze(0), kernel, { padding: r });
    return conv.squeeze(0).gt(0.5).to('float32');
  });
}

export function binaryOperator(x: Tensor, op: BinaryOperator, radius: number): Tensor {
  return tidy(() => {
    const nd = x.ndim - 1;
    const { data, size } = ballKernel(radius, nd);
    const kernel = tensor(data, [1, 1, ...new Array<number>(nd).fill(size)]).to(x.device as Device);
    const r = (size - 1) / 2;
    const dil = (t: Tensor) => dilate(t, kernel, r);
    const ero = (t: Tensor) => dil(t.neg().add(1)).neg().add(1);
    if (op === 'dilation') return dil(x);
    if (op === 'erosion') return ero(x);
    if (op === 'closing') return ero(dil(x));
    return dil(ero(x));
  });
}

export interface BinaryOperatorStep {
  channel: number;
  op: BinaryOperator;
  radius: number;
}

/**
 * ApplyRandomBinaryOperator on the one-hot channels of img, in the given (shuffled) order; voxels
 * a step adds to its channel are removed from the other one-hot channels.
 */
export function applyBinaryOperators(img: Tensor, oneHotChannels: readonly number[], steps: readonly BinaryOperatorStep[]): Tensor {
  if (steps.length === 0) return img.clone();
  return tidy(() => {
    const chans: Tensor[] = [];
    for (let c = 0; c < img.shape[0]; c++) chans.push(img.narrow(0, c, 1));
    for (const s of steps) {
      const before = chans[s.channel];
      const after = binaryOperator(before, s.op, s.radius);
      const added = after.gt(0.5).logicalAnd(before.lt(0.5));
      for (const o of oneHotChannels) if (o !== s.channel) chans[o] = chans[o].maskedFill(added, 0);
      chans[s.channel] = after;
    }
    return cat(chans, 0);
  });
}

/**
 * RemoveRandomConnectedComponentFromOneHot (fill_with_other_class_p = 0): in each chosen channel,
 * one component (full connectivity) smaller than `maxFraction` of the patch, picked by `pick`,
 * is set to 0. Labelling runs on the host: the channel is copied off the device.
 */
export function removeRandomComponents(
  img: Tensor,
  channels: readonly number[],
  pick: (n: number) => number,
  maxFraction = 0.15,
): Tensor {
  if (channels.length === 0) return img.clone();
  return tidy(() => {
    const spatial = img.shape.slice(1);
    const shape3 = (spatial.length === 2 ? [1, ...spatial] : spatial) as [number, number, number];
    const chans: Tensor[] = [];
    for (let c = 0; c < img.shape[0]; c++) chans.push(img.narrow(0, c, 1));
    for (const c of channels) {
      const mask = chans[c].gt(0.5).to('uint8').data() as Uint8Array;
      if (!mask.some((v) => v !== 0)) continue;
      const { labels, count, sizes } = connectedComponents(mask, shape3);
      const valid: number[] = [];
      for (let id = 1; id <= count; id++) if (sizes[id] < mask.length * maxFraction) valid.push(id);
      if (valid.length === 0) continue;
      const chosen = valid[pick(valid.length)];
      const remove = new Uint8Array(mask.length);
      for (let i = 0; i < remove.length; i++) remove[i] = labels[i] === chosen ? 1 : 0;
      const removeT = tensor(remove, [1, ...spatial], { dtype: 'bool' }).to(img.device as Device);
      chans[c] = chans[c].maskedFill(removeT, 0);
    }
    return cat(chans, 0);
  });
}

/** ConvertSegmentationToRegions: one float 0/1 channel per region (a list of labels), from seg channel 0. */
export function segToRegions(seg: Tensor, regions: readonly (readonly number[])[]): Tensor {
  return tidy(() => {
    const s = seg.narrow(0, 0, 1);
    const channels = regions.map((labels) => {
      let m = s.eq(labels[0]);
      for (const l of labels.slice(1)) m = m.logicalOr(s.eq(l));
      return m.to('float32');
    });
    return cat(channels, 0);
  });
}

/** DownsampleSegForDS: one target per scale, nearest-exact to round(patch · s); scale 1 keeps the target. */
export function deepSupervisionTargets(target: Tensor, shapes: readonly (readonly number[])[]): Tensor[] {
  return shapes.map((shape) => resizeNearestExact(target, shape));
}
