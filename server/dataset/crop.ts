// Crop to the nonzero region, exactly as nnU-Net v2's crop_to_nonzero (REFERENCE §4.1): mask = OR over
// channels of image != 0, holes filled like scipy's binary_fill_holes (face connectivity), half-open
// bounding box (the whole image when the mask is empty), seg voxels 0 outside the mask become -1.
// Volumes are C-order arrays of shape [d0, d1, d2] (the reader's axis order); 2D is (1, X, Y).

export type Shape3 = [number, number, number];
/** Half-open [start, end) per axis. */
export type BoundingBox = [number, number][];

type NumericArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

const voxelCount = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** 1 where any channel is nonzero (NaN counts as nonzero, as `!= 0` does in numpy). */
export function nonzeroMask(channels: readonly ArrayLike<number>[], shape: Shape3): Uint8Array {
  const n = voxelCount(shape);
  const mask = new Uint8Array(n);
  for (const data of channels) {
    if (data.length !== n) throw new RangeError(`channel has ${data.length} voxels, shape ${shape.join('x')} needs ${n}`);
    for (let i = 0; i < n; i++) if (data[i] !== 0) mask[i] = 1;
  }
  return mask;
}

/**
 * Fills holes: background voxels that cannot reach the border through face-connected background
 * become foreground (scipy.ndimage.binary_fill_holes with its default structure). Returns a new mask.
 */
export function fillHoles(mask: Uint8Array, shape: Shape3): Uint8Array {
  const [d0, d1, d2] = shape;
  const n = d0 * d1 * d2;
  const s0 = d1 * d2;
  // 1 = background reached from outside the volume.
  const outside = new Uint8Array(n);
  const queue = new Int32Array(n);
  let head = 0;
  let tail = 0;
  const seed = (i: number) => {
    if (mask[i] === 0 && outside[i] === 0) {
      outside[i] = 1;
      queue[tail++] = i;
    }
  };
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      const row = a * s0 + b * d2;
      const onFace = a === 0 || a === d0 - 1 || b === 0 || b === d1 - 1;
      if (onFace) for (let c = 0; c < d2; c++) seed(row + c);
      else if (d2 > 0) {
        seed(row);
        seed(row + d2 - 1);
      }
    }
  }
  while (head < tail) {
    const i = queue[head++];
    const a = Math.floor(i / s0);
    const rest = i - a * s0;
    const b = Math.floor(rest / d2);
    const c = rest - b * d2;
    if (a > 0) seed(i - s0);
    if (a < d0 - 1) seed(i + s0);
    if (b > 0) seed(i - d2);
    if (b < d1 - 1) seed(i + d2);
    if (c > 0) seed(i - 1);
    if (c < d2 - 1) seed(i + 1);
  }
  const filled = new Uint8Array(n);
  for (let i = 0; i < n; i++) filled[i] = outside[i] ? 0 : 1;
  return filled;
}

/** Tight half-open bounding box of the mask; the whole volume when the mask is empty (acvl_utils). */
export function boundingBox(mask: Uint8Array, shape: Shape3): BoundingBox {
  const [d0, d1, d2] = shape;
  const lo = [d0, d1, d2];
  const hi = [-1, -1, -1];
  let i = 0;
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      for (let c = 0; c < d2; c++, i++) {
        if (mask[i] === 0) continue;
        if (a < lo[0]) lo[0] = a;
        if (a > hi[0]) hi[0] = a;
        if (b < lo[1]) lo[1] = b;
        if (b > hi[1]) hi[1] = b;
        if (c < lo[2]) lo[2] = c;
        if (c > hi[2]) hi[2] = c;
      }
    }
  }
  if (hi[0] < 0) return [[0, d0], [0, d1], [0, d2]];
  return [0, 1, 2].map((k) => [lo[k], hi[k] + 1] as [number, number]);
}

/** The shape of a bounding box. */
export function boxShape(bbox: BoundingBox): Shape3 {
  return bbox.map(([a, b]) => b - a) as Shape3;
}

/** Copies the box out of a C-order volume, keeping the array type. */
export function cropVolume<T extends NumericArray>(data: T, shape: Shape3, bbox: BoundingBox): T {
  const [, d1, d2] = shape;
  const [[a0, a1], [b0, b1], [c0, c1]] = bbox;
  const out = new (data.constructor as new (n: number) => T)((a1 - a0) * (b1 - b0) * (c1 - c0));
  let o = 0;
  const width = c1 - c0;
  for (let a = a0; a < a1; a++) {
    for (let b = b0; b < b1; b++) {
      const start = (a * d1 + b) * d2 + c0;
      out.set(data.subarray(start, start + width) as ArrayLike<number>, o);
      o += width;
    }
  }
  return out;
}

export interface CroppedCase {
  /** One cropped volume per channel. */
  images: Float32Array[];
  /** Cropped segmentation with -1 where it was 0 outside the nonzero mask. */
  seg: Int16Array;
  bbox: BoundingBox;
  shapeBeforeCropping: Shape3;
  shapeAfterCropping: Shape3;
}

/**
 * nnU-Net's crop_to_nonzero for one case. Without a segmentation (inference), the returned one is
 * 0 inside the nonzero mask and -1 outside, as nnU-Net creates it.
 */
export function cropToNonzero(images: readonly ArrayLike<number>[], seg: ArrayLike<number> | undefined, shape: Shape3): CroppedCase {
  const mask = fillHoles(nonzeroMask(images, shape), shape);
  const bbox = boundingBox(mask, shape);
  const cropped = images.map((im) => cropVolume(im instanceof Float32Array ? im : Float32Array.from(im), shape, bbox));
  const croppedMask = cropVolume(mask, shape, bbox);
  const fullSeg = seg === undefined ? new Int16Array(voxelCount(shape)) : seg instanceof Int16Array ? seg : Int16Array.from(seg);
  const croppedSeg = cropVolume(fullSeg, shape, bbox);
  for (let i = 0; i < croppedSeg.length; i++) if (croppedSeg[i] === 0 && croppedMask[i] === 0) croppedSeg[i] = -1;
  return { images: cropped, seg: croppedSeg, bbox, shapeBeforeCropping: [...shape] as Shape3, shapeAfterCropping: boxShape(bbox) };
}
