// Array helpers of the predictor on channel-first C-order volumes (c, x, y, z): padding, tile
// copy in and out, and flips. Plain loops over typed arrays; the innermost axis is copied with
// subarray/set so the per-voxel cost stays a memcpy where the layout allows it.

export type Shape3 = [number, number, number];

const strides = (s: readonly number[]) => [s[1] * s[2], s[2], 1];

/** Zero-pads each channel by [before, after] per spatial axis. */
export function padVolume(src: Float32Array, channels: number, shape: Shape3, pad: [number, number][]): { data: Float32Array; shape: Shape3 } {
  const out: Shape3 = [shape[0] + pad[0][0] + pad[0][1], shape[1] + pad[1][0] + pad[1][1], shape[2] + pad[2][0] + pad[2][1]];
  if (out.every((s, d) => s === shape[d])) return { data: src, shape };
  const dst = new Float32Array(channels * out[0] * out[1] * out[2]);
  const n = shape[0] * shape[1] * shape[2];
  const m = out[0] * out[1] * out[2];
  for (let c = 0; c < channels; c++) {
    for (let x = 0; x < shape[0]; x++) {
      for (let y = 0; y < shape[1]; y++) {
        const s = c * n + (x * shape[1] + y) * shape[2];
        const d = c * m + ((x + pad[0][0]) * out[1] + (y + pad[1][0])) * out[2] + pad[2][0];
        dst.set(src.subarray(s, s + shape[2]), d);
      }
    }
  }
  return { data: dst, shape: out };
}

/** Crops each channel to [start, start + size) per spatial axis. */
export function cropVolume(src: Float32Array, channels: number, shape: Shape3, start: readonly number[], size: Shape3): Float32Array {
  const dst = new Float32Array(channels * size[0] * size[1] * size[2]);
  const n = shape[0] * shape[1] * shape[2];
  const m = size[0] * size[1] * size[2];
  for (let c = 0; c < channels; c++) {
    for (let x = 0; x < size[0]; x++) {
      for (let y = 0; y < size[1]; y++) {
        const s = c * n + ((x + start[0]) * shape[1] + (y + start[1])) * shape[2] + start[2];
        dst.set(src.subarray(s, s + size[2]), c * m + (x * size[1] + y) * size[2]);
      }
    }
  }
  return dst;
}

/**
 * Adds `tile · weight` (tile: channels × patch, weight: patch) into `acc` at `start`, and `weight`
 * into `weights`; `round` is applied after each addition (nnU-Net's float16 accumulators).
 */
export function accumulateTile(
  acc: Float32Array,
  weights: Float32Array,
  channels: number,
  shape: Shape3,
  tile: Float32Array,
  weight: Float32Array,
  patch: Shape3,
  start: readonly number[],
  round: (v: number) => number,
): void {
  const n = shape[0] * shape[1] * shape[2];
  const p = patch[0] * patch[1] * patch[2];
  const [sx, sy] = strides(shape);
  for (let x = 0; x < patch[0]; x++) {
    for (let y = 0; y < patch[1]; y++) {
      const dRow = (x + start[0]) * sx + (y + start[1]) * sy + start[2];
      const tRow = (x * patch[1] + y) * patch[2];
      for (let z = 0; z < patch[2]; z++) {
        const w = weight[tRow + z];
        weights[dRow + z] = round(weights[dRow + z] + w);
        for (let c = 0; c < channels; c++) {
          const i = c * n + dRow + z;
          // the product is float32 in nnU-Net (float32 logits × half weights), then added into half
          acc[i] = round(acc[i] + Math.fround(tile[c * p + tRow + z] * w));
        }
      }
    }
  }
}

/** Flips a (c, x, y, z) volume along the given spatial axes (0..2) into a new array. */
export function flipVolume(src: Float32Array, channels: number, shape: Shape3, axes: readonly number[]): Float32Array {
  if (axes.length === 0) return src.slice();
  const [X, Y, Z] = shape;
  const fx = axes.includes(0);
  const fy = axes.includes(1);
  const fz = axes.includes(2);
  const dst = new Float32Array(src.length);
  const n = X * Y * Z;
  for (let c = 0; c < channels; c++) {
    for (let x = 0; x < X; x++) {
      const sx = fx ? X - 1 - x : x;
      for (let y = 0; y < Y; y++) {
        const sy = fy ? Y - 1 - y : y;
        const s = c * n + (sx * Y + sy) * Z;
        const d = c * n + (x * Y + y) * Z;
        if (!fz) dst.set(src.subarray(s, s + Z), d);
        else for (let z = 0; z < Z; z++) dst[d + z] = src[s + Z - 1 - z];
      }
    }
  }
  return dst;
}
