// NIfTI-1/NIfTI-2 reading (.nii, .nii.gz) and NIfTI-1 writing, matching nnU-Net's NibabelIO: arrays
// in (channel, k, j, i) order with spacing reversed to match, the affine kept as stored for writing.
// Departs from it by keeping the file's datatype (toFloat32 gives nnU-Net's float32) and by reading 4D.
import { open, type FileHandle } from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { ImageFormatError } from './errors.js';
import { NIFTI2_HEADER_BYTES, parseNiftiHeader, type NiftiHeaderInfo } from './nifti-header.js';
import { hostLittleEndian, swapBytesInPlace, type NiftiImage, type VoxelArray } from './nifti-types.js';

export type { NiftiDatatype, NiftiImage, VoxelArray } from './nifti-types.js';
export { encodeNifti, writeNifti, type NiftiImageToWrite, type WriteOptions } from './nifti-writer.js';

export interface ReadOptions {
  /**
   * Refuse volumes with more voxels (channels included) than this, before allocating them.
   * Default: env NNUNET_MAX_VOXELS, else 1024**3.
   */
  maxVoxels?: number;
}

const DEFAULT_MAX_VOXELS = 1024 ** 3;

/** Reads a .nii or .nii.gz file (gzip is recognised by its content, not the file name). */
export async function readNifti(path: string, options: ReadOptions = {}): Promise<NiftiImage> {
  const maxVoxels = resolveMaxVoxels(options);
  let bytes: Uint8Array;
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = await readRange(handle, Math.min(size, NIFTI2_HEADER_BYTES));
    if (isGzip(head)) {
      // The header of a .gz file can only be checked after inflating; decode does that before
      // inflating the voxels.
      bytes = await readRange(handle, size);
    } else {
      // Check the header first, so an oversized or truncated file is refused without loading it.
      const header = parseNiftiHeader(head, path, maxVoxels);
      checkLength(size, header, path);
      bytes = await readRange(handle, header.end);
    }
  } finally {
    await handle.close();
  }
  return decode(bytes, path, maxVoxels, true);
}

/** The first `length` bytes of a file, read in pieces (fs.readFile stops at 2 GiB). */
async function readRange(handle: FileHandle, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(out, filled, Math.min(length - filled, 2 ** 30), filled);
    if (bytesRead === 0) break; // the file shrank meanwhile; decode reports the truncation
    filled += bytesRead;
  }
  return out.subarray(0, filled);
}

/** Decodes the bytes of a .nii or .nii.gz file; `file` names it in errors. Never aliases `bytes`. */
export function decodeNifti(bytes: Uint8Array, file: string, options: ReadOptions = {}): NiftiImage {
  return decode(bytes, file, resolveMaxVoxels(options), false);
}

/** Any VoxelArray as a Float32Array (the form nnU-Net's readers return), copying only when needed. */
export function toFloat32(data: VoxelArray): Float32Array {
  return data instanceof Float32Array ? data : new Float32Array(data);
}

/** True when every value of `data` is NaN (never for integer data). */
export function isAllNaN(data: VoxelArray): boolean {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return false;
  for (let i = 0; i < data.length; i++) if (!Number.isNaN(data[i])) return false;
  return true;
}

/** `owned`: `bytes` is ours, so the voxel array may view it instead of copying. */
function decode(bytes: Uint8Array, file: string, maxVoxels: number, owned: boolean): NiftiImage {
  let raw = bytes;
  let header: NiftiHeaderInfo;
  if (isGzip(bytes)) {
    header = parseNiftiHeader(inflateHead(bytes, file), file, maxVoxels);
    raw = inflateAll(bytes, file, header.end);
    owned = true;
  } else {
    header = parseNiftiHeader(bytes, file, maxVoxels);
  }
  checkLength(raw.length, header, file);
  const data = scaled(voxelsOf(raw, header, owned), header);
  if (isAllNaN(data)) throw new ImageFormatError(file, 'all voxels are NaN');
  return {
    data,
    shape: header.shape,
    channels: header.channels,
    spacing: header.spacing,
    affine: header.affine,
    datatype: header.datatype.name,
    niftiVersion: header.version,
  };
}

function resolveMaxVoxels(options: ReadOptions): number {
  const fromEnv = process.env.NNUNET_MAX_VOXELS;
  const limit = options.maxVoxels ?? (fromEnv === undefined || fromEnv === '' ? DEFAULT_MAX_VOXELS : Number(fromEnv));
  if (!Number.isSafeInteger(limit) || limit < 1) {
    const what = options.maxVoxels === undefined ? `NNUNET_MAX_VOXELS="${fromEnv}"` : `maxVoxels ${limit}`;
    throw new RangeError(`${what} is not a positive whole number of voxels`);
  }
  return limit;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function checkLength(available: number, header: NiftiHeaderInfo, file: string): void {
  if (available < header.end) {
    throw new ImageFormatError(file, `truncated: the header declares ${header.end} bytes, the data has ${available}`);
  }
}

/** Compressed bytes tried, in turn, to reach the header: enough for any gzip name/comment fields in practice. */
const HEAD_INFLATE_STEPS = [4096, 128 * 1024];

/**
 * Inflates just enough of a gzip stream to hold the header, by inflating growing prefixes with a
 * sync flush (node:zlib returns what a partial stream yields). A prefix of n compressed bytes
 * expands to at most ~1000n bytes, so this stays small even for a gzip bomb.
 */
function inflateHead(bytes: Uint8Array, file: string): Uint8Array {
  for (const step of HEAD_INFLATE_STEPS) {
    const chunk = bytes.subarray(0, Math.min(step, bytes.length));
    const out = inflate(chunk, file, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    if (out.length >= NIFTI2_HEADER_BYTES || chunk.length === bytes.length) return out;
  }
  throw new ImageFormatError(file, 'gzip stream yields no NIfTI header within its first 128 KiB');
}

/**
 * Inflates the whole stream, capped a little above what the header declares: a stream that
 * inflates to far more is refused rather than allocated. (nifti-reader-js's decompress, fflate,
 * sizes its output from the gzip trailer, which a truncated or hostile file controls.)
 */
function inflateAll(bytes: Uint8Array, file: string, declared: number): Uint8Array {
  const cap = Math.min(bufferConstants.MAX_LENGTH, declared + Math.max(16 * 1024 * 1024, declared / 4));
  try {
    return inflate(bytes, file, { maxOutputLength: Math.floor(cap) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ImageFormatError(file, `gzip data inflates to more than the ${declared} bytes the header declares`);
    }
    throw err;
  }
}

function inflate(bytes: Uint8Array, file: string, options: Parameters<typeof gunzipSync>[1]): Uint8Array {
  try {
    return gunzipSync(bytes, options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE') throw err;
    throw new ImageFormatError(file, `corrupt or truncated gzip data (${e.message})`);
  }
}

/** The stored voxels as a typed array of the file's datatype, in host byte order. */
function voxelsOf(raw: Uint8Array, header: NiftiHeaderInfo, owned: boolean): VoxelArray {
  const { array: TypedArray, bytes: width } = header.datatype;
  const start = raw.byteOffset + header.voxOffset;
  const swap = width > 1 && header.littleEndian !== hostLittleEndian;
  if (owned && !swap && start % width === 0) return new TypedArray(raw.buffer, start, header.voxels);
  const copy = raw.buffer.slice(start, start + header.voxels * width);
  if (swap) swapBytesInPlace(new Uint8Array(copy), width);
  return new TypedArray(copy, 0, header.voxels);
}

/** Applies scl_slope/scl_inter, into float32 (float64 for float64 files) as nibabel's float reading does. */
function scaled(data: VoxelArray, header: NiftiHeaderInfo): VoxelArray {
  if (header.scaling === undefined) return data;
  const { slope, inter } = header.scaling;
  const out = data instanceof Float64Array ? new Float64Array(data.length) : new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * slope + inter;
  return out;
}
