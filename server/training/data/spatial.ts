// Spatial operations of the augmentation on libtorch tensors: batchgeneratorsv2's SpatialTransform
// (rotation + scaling as one affine grid, centred crop, image linear with zeros outside, labels by
// per-label linear interpolation and argmax with −1 outside), the integer crop used when neither is
// drawn, mirroring, and nearest-exact resizing (which our interpolate lacks) by index selection.
import { F, full, tensor, tidy, where, type Device, type Tensor } from '../../engine/torch.js';

/** A in array-axis order: Rz·Ry·Rx·diag(s) in 3D (REFERENCE §5.3), R·diag(s) in 2D. */
export function affineMatrix(angles: readonly number[], scale: number): number[][] {
  const mul = (a: number[][], b: number[][]) => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
  if (angles.length === 2 || angles.length === 1) {
    const [c, s] = [Math.cos(angles[0]), Math.sin(angles[0])];
    return mul([[c, -s], [s, c]], [[scale, 0], [0, scale]]);
  }
  const [a0, a1, a2] = angles;
  const rx = [[1, 0, 0], [0, Math.cos(a0), -Math.sin(a0)], [0, Math.sin(a0), Math.cos(a0)]];
  const ry = [[Math.cos(a1), 0, Math.sin(a1)], [0, 1, 0], [-Math.sin(a1), 0, Math.cos(a1)]];
  const rz = [[Math.cos(a2), -Math.sin(a2), 0], [Math.sin(a2), Math.cos(a2), 0], [0, 0, 1]];
  const S = [[scale, 0, 0], [0, scale, 0], [0, 0, scale]];
  return mul(mul(mul(rz, ry), rx), S);
}

/**
 * The affine_grid theta (align_corners=False) that makes output voxel k of a patch P sample the
 * input of shape S at (S−1)/2 + A·(k − (P−1)/2): in normalised coordinates θ_ij = A_ij·P_j/S_i,
 * no translation, with the axes reversed because grid_sample's coordinates are (x=last, ...).
 */
export function affineTheta(A: readonly (readonly number[])[], inShape: readonly number[], patch: readonly number[]): number[] {
  const n = patch.length;
  const theta: number[] = [];
  for (let r = 0; r < n; r++) {
    const i = n - 1 - r;
    for (let c = 0; c < n; c++) {
      const j = n - 1 - c;
      theta.push((A[i][j] * patch[j]) / inShape[i]);
    }
    theta.push(0);
  }
  return theta;
}

/** The box [start, start + size) of the spatial axes of t (C, ...S), padded with `value` outside. */
export function cropTensor(t: Tensor, start: readonly number[], size: readonly number[], value: number): Tensor {
  return tidy(() => {
    let out = t;
    const pads: number[] = [];
    start.forEach((s, d) => {
      const n = t.shape[d + 1];
      const lo = Math.max(0, s);
      const hi = Math.min(n, s + size[d]);
      out = out.narrow(d + 1, lo, Math.max(0, hi - lo));
      pads.unshift(lo - s, s + size[d] - hi);
    });
    if (pads.some((p) => p !== 0)) out = F.pad(out.unsqueeze(0), pads, 'constant', value).squeeze(0);
    return out.contiguous();
  });
}

/** No rotation or scaling: nnU-Net crops without interpolating, from floor(S/2) − floor(P/2). */
export function centerCrop(t: Tensor, patch: readonly number[], value: number): Tensor {
  const start = patch.map((p, d) => Math.floor(t.shape[d + 1] / 2) - Math.floor(p / 2));
  return cropTensor(t, start, patch, value);
}

/**
 * affine_grid(θ, align_corners=False) for the theta of `affineTheta`, built as a sum of one
 * broadcast term per axis: libtorch's generic affine_grid (a batched matmul over every voxel) is
 * several times slower on the CPU for the same grid.
 */
export function samplingGrid(A: readonly (readonly number[])[], inShape: readonly number[], patch: readonly number[], device: Device): Tensor {
  return tidy(() => {
    const nd = patch.length;
    let grid: Tensor | null = null;
    for (let j = 0; j < nd; j++) {
      const u = Float32Array.from({ length: patch[j] }, (_, k) => (2 * k + 1) / patch[j] - 1);
      const shape = patch.map((p, d) => (d === j ? p : 1));
      // grid component r is input axis nd − 1 − r (grid_sample's x is the last axis).
      const coef = Float32Array.from({ length: nd }, (_, r) => (A[nd - 1 - r][j] * patch[j]) / inShape[nd - 1 - r]);
      const term = tensor(u, [...shape, 1]).mul(tensor(coef, [...shape.map(() => 1), nd])).to(device);
      grid = grid === null ? term : grid.add(term);
    }
    return (grid as Tensor).expand([...patch, nd]).unsqueeze(0).contiguous();
  });
}

/** Labels sampled per chunk of one-hot channels, to bound memory for datasets with many labels. */
const LABEL_CHUNK = 4;

/**
 * Resamples a label map (Cs, ...S) with the grid: each label's indicator is interpolated linearly
 * and every output voxel takes the label with the largest weight (ties → the lowest label). The
 * weight of −1 is what the labels leave of 1 — the −1 voxels inside plus the area outside the
 * input — as if the map were padded with −1, without sampling either separately.
 * Departs from batchgeneratorsv2 only in precision: float32 weights instead of ×1000 float16.
 */
function resampleLabels(seg: Tensor, grid: Tensor, maxLabel: number): Tensor {
  return tidy(() => {
    const cs = seg.shape[0];
    const g = cs === 1 ? grid : grid.expand([cs, ...grid.shape.slice(1)]);
    const sample = (x: Tensor) => F.gridSample(x, g, { mode: 'bilinear', paddingMode: 'zeros', alignCorners: false });
    const ones = seg.shape.slice(1).map(() => 1);
    let best: Tensor | null = null;
    let label: Tensor | null = null;
    let total: Tensor | null = null;
    for (let first = 0; first <= maxLabel; first += LABEL_CHUNK) {
      const k = Math.min(LABEL_CHUNK, maxLabel + 1 - first);
      [best, label, total] = tidy(() => {
        const values = tensor(Int16Array.from({ length: k }, (_, i) => first + i), [1, k, ...ones]).to(seg.device as Device);
        const w = sample(seg.unsqueeze(1).eq(values).to('float32'));
        let [b, l, t] = [best, label, total];
        // A running maximum over the channels: elementwise ops beat max/argmax over dim 1 here.
        for (let i = 0; i < k; i++) {
          const wi = w.narrow(1, i, 1);
          if (b === null || l === null || t === null) {
            [b, l, t] = [wi, full(wi.shape, first + i, { dtype: 'int16', device: seg.device as Device }), wi];
            continue;
          }
          const better = wi.gt(b);
          [b, l, t] = [b.maximum(wi), where(better, first + i, l), t.add(wi)];
        }
        return [b, l, t];
      });
    }
    const minusOne = (total as Tensor).neg().add(1);
    return where(minusOne.ge(best as Tensor), -1, (label as Tensor).to('int16')).to('int16').squeeze(1);
  });
}

/**
 * Spatial transform of one sample: img (C, ...S) float, seg (Cs, ...S) int16 → patch-sized
 * outputs. A = null (neither rotation nor scaling drawn) crops without interpolation.
 */
export function spatialTransform(
  img: Tensor,
  seg: Tensor,
  patch: readonly number[],
  A: readonly (readonly number[])[] | null,
  maxLabel: number,
): { img: Tensor; seg: Tensor } {
  if (A === null) return { img: centerCrop(img, patch, 0), seg: centerCrop(seg, patch, -1) };
  return tidy(() => {
    const grid = samplingGrid(A, img.shape.slice(1), patch, img.device as Device);
    const out = F.gridSample(img.unsqueeze(0), grid, { mode: 'bilinear', paddingMode: 'zeros', alignCorners: false }).squeeze(0);
    return { img: out, seg: resampleLabels(seg, grid, maxLabel) };
  });
}

/** Flips the given spatial axes (0-based) of a (C, ...S) tensor. */
export function mirror(t: Tensor, axes: readonly number[]): Tensor {
  return axes.length === 0 ? t.clone() : t.flip(axes.map((a) => a + 1));
}

/** PyTorch's nearest-exact source index: min(floor((dst + 0.5) · in/out), in − 1), in float32. */
export function nearestExactIndices(inSize: number, outSize: number): number[] {
  const scale = Math.fround(inSize / outSize);
  return Array.from({ length: outSize }, (_, i) => Math.min(Math.floor(Math.fround((i + 0.5) * scale)), inSize - 1));
}

/** interpolate(mode='nearest-exact') of the spatial axes of a (C, ...S) tensor to `size`. */
export function resizeNearestExact(t: Tensor, size: readonly number[]): Tensor {
  return tidy(() => {
    let out = t;
    size.forEach((n, d) => {
      const inSize = out.shape[d + 1];
      if (inSize === n) return;
      const idx = tensor(Float64Array.from(nearestExactIndices(inSize, n)), [n], { dtype: 'int64' }).to(t.device as Device);
      out = out.indexSelect(d + 1, idx);
    });
    return out === t ? t.clone() : out;
  });
}
