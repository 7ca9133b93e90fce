// Types and the datatype table shared by the NIfTI reader and writer (server/io/nifti.ts is the
// public entry point and re-exports the types). Only the eight scalar datatypes that nnU-Net data
// uses are supported; the others are named in errors so a user knows what to convert.

export type NiftiDatatype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

export type VoxelArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

/**
 * A NIfTI volume in nnU-Net's array convention (NibabelIO: nibabel's (i, j, k) array transposed
 * (2, 1, 0)). Array axes are (channel, k, j, i) with i fastest, which is the on-disk order, so
 * reading and writing never transpose.
 */
export interface NiftiImage {
  /**
   * Voxel values with scl_slope/scl_inter applied. Typed like the file's datatype when no scaling
   * applies; Float32Array when scaled (Float64Array for float64 files). Layout: channel-major, then
   * spatial axes in nnU-Net order (k, j, i), the NIfTI i index varying fastest.
   */
  data: VoxelArray;
  /** Spatial shape in nnU-Net order: [dim3, dim2, dim1] of the NIfTI header (2D files get dim3 = 1). */
  shape: [number, number, number];
  /** Number of channels (NIfTI dim4, or 1). */
  channels: number;
  /** Voxel spacing in mm in the same order as shape: [pixdim3, pixdim2, pixdim1] (absolute values). */
  spacing: [number, number, number];
  /**
   * 4x4 affine (row-major) mapping NIfTI voxel (i, j, k, 1) to world RAS+ mm, as stored: sform if
   * sform_code > 0, else qform (quaternion) if qform_code > 0, else diag(pixdim).
   */
  affine: number[][];
  /** Datatype stored in the file. */
  datatype: NiftiDatatype;
  niftiVersion: 1 | 2;
}

export interface VoxelArrayConstructor {
  new (length: number): VoxelArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): VoxelArray;
}

export interface DatatypeInfo {
  name: NiftiDatatype;
  /** NIfTI datatype code (nifti1.h DT_*). */
  code: number;
  bytes: number;
  array: VoxelArrayConstructor;
  integer: boolean;
  /** Value range; used to clamp when writing integer types. */
  min: number;
  max: number;
}

export const DATATYPES: readonly DatatypeInfo[] = [
  { name: 'uint8', code: 2, bytes: 1, array: Uint8Array, integer: true, min: 0, max: 255 },
  { name: 'int8', code: 256, bytes: 1, array: Int8Array, integer: true, min: -128, max: 127 },
  { name: 'int16', code: 4, bytes: 2, array: Int16Array, integer: true, min: -32768, max: 32767 },
  { name: 'uint16', code: 512, bytes: 2, array: Uint16Array, integer: true, min: 0, max: 65535 },
  { name: 'int32', code: 8, bytes: 4, array: Int32Array, integer: true, min: -(2 ** 31), max: 2 ** 31 - 1 },
  { name: 'uint32', code: 768, bytes: 4, array: Uint32Array, integer: true, min: 0, max: 2 ** 32 - 1 },
  { name: 'float32', code: 16, bytes: 4, array: Float32Array, integer: false, min: -3.4028234663852886e38, max: 3.4028234663852886e38 },
  { name: 'float64', code: 64, bytes: 8, array: Float64Array, integer: false, min: -Number.MAX_VALUE, max: Number.MAX_VALUE },
];

/** NIfTI datatype codes we refuse, by name, so the error says what the file holds. */
const UNSUPPORTED_CODES: Record<number, string> = {
  0: 'unknown',
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'rgb24',
  1024: 'int64',
  1280: 'uint64',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'rgba32',
};

export function datatypeByCode(code: number): DatatypeInfo | undefined {
  return DATATYPES.find((d) => d.code === code);
}

export function datatypeByName(name: NiftiDatatype): DatatypeInfo {
  const info = DATATYPES.find((d) => d.name === name);
  if (info === undefined) throw new RangeError(`unknown NIfTI datatype '${String(name)}'`);
  return info;
}

/** The datatype a typed array holds (its element type). */
export function datatypeOfArray(data: VoxelArray): DatatypeInfo {
  const info = DATATYPES.find((d) => data instanceof d.array);
  if (info === undefined) throw new TypeError('voxel data must be one of the eight supported typed arrays');
  return info;
}

export function describeUnsupportedCode(code: number): string {
  const name = UNSUPPORTED_CODES[code] ?? 'not a NIfTI datatype';
  const supported = DATATYPES.map((d) => d.name).join(', ');
  return `unsupported datatype code ${code} (${name}); supported: ${supported}`;
}

/** Typed arrays use the host's byte order; NIfTI files may use either. */
export const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of each `width`-byte element of `bytes`. */
export function swapBytesInPlace(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let lo = i, hi = i + width - 1; lo < hi; lo++, hi--) {
      const t = bytes[lo];
      bytes[lo] = bytes[hi];
      bytes[hi] = t;
    }
  }
}
