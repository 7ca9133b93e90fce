// NumPy .npz archives: a zip of '<key>.npy' members, as np.savez (stored) and np.savez_compressed
// (deflate) write them and nnU-Net uses for predicted probabilities. Unlike numpy, members get a
// fixed timestamp so the same arrays always give the same bytes.
import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { writeFileAtomic } from './atomic.js';
import { ImageFormatError } from './errors.js';
import { decodeNpy, encodeNpy, type NdArray } from './npy.js';

export interface NpzOptions {
  /** Deflate the members (np.savez_compressed); default false, stored (np.savez). */
  compress?: boolean;
}

/** The earliest time a zip entry can carry; fixed so archives are reproducible. */
const ZIP_EPOCH = new Date(1980, 0, 1);

/** Encodes arrays as an .npz archive; each key becomes the member '<key>.npy'. */
export function encodeNpz(arrays: Record<string, NdArray>, options: NpzOptions = {}): Buffer {
  const files: Zippable = {};
  for (const [key, array] of Object.entries(arrays)) {
    if (key === '' || key.endsWith('/')) throw new RangeError(`npz key '${key}' cannot name a zip member`);
    files[`${key}.npy`] = encodeNpy(array);
  }
  const zipped = zipSync(files, { level: options.compress ? 6 : 0, mtime: ZIP_EPOCH });
  return Buffer.from(zipped.buffer, zipped.byteOffset, zipped.byteLength);
}

/** Decodes an .npz archive into arrays keyed by member name without '.npy', as np.load does. */
export function decodeNpz(bytes: Uint8Array, file = '<npz>'): Record<string, NdArray> {
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes);
  } catch (err) {
    throw new ImageFormatError(file, `not a readable npz (zip) archive: ${(err as Error).message}`);
  }
  const checksums = centralDirectoryCrcs(bytes);
  const arrays: Record<string, NdArray> = {};
  for (const [name, data] of Object.entries(members)) {
    if (name.endsWith('/')) continue; // a folder entry carries no array
    const expected = checksums?.get(name);
    if (expected !== undefined && crc32(data) !== expected) {
      throw new ImageFormatError(file, `member '${name}' is corrupt: its CRC-32 does not match the archive's`);
    }
    const key = name.endsWith('.npy') ? name.slice(0, -'.npy'.length) : name;
    try {
      arrays[key] = decodeNpy(data, name);
    } catch (err) {
      if (err instanceof ImageFormatError) throw new ImageFormatError(file, `member '${name}': ${err.reason}`);
      throw err;
    }
  }
  return arrays;
}

/** Reads an .npz file; format problems are ImageFormatErrors naming `path`. */
export async function readNpz(path: string): Promise<Record<string, NdArray>> {
  return decodeNpz(await readFile(path), path);
}

/** Writes an .npz file atomically (temporary file and rename). */
export async function writeNpz(path: string, arrays: Record<string, NdArray>, options: NpzOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodeNpz(arrays, options));
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;

/**
 * The CRC-32 of each member, from the zip central directory (zip64 too, which np.savez writes).
 * fflate does not check CRCs, and a flipped byte in a stored member would otherwise pass silently.
 * Returns undefined when the directory cannot be walked; unzipSync has then already judged it.
 */
function centralDirectoryCrcs(bytes: Uint8Array): Map<string, number> | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = bytes.length - 22;
  while (eocd >= 0 && view.getUint32(eocd, true) !== EOCD_SIGNATURE) eocd--;
  if (eocd < 0) return undefined;
  let entries = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  if ((offset === 0xffffffff || entries === 0xffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === ZIP64_LOCATOR_SIGNATURE) {
    const record = Number(view.getBigUint64(eocd - 12, true));
    if (!Number.isSafeInteger(record) || record + 56 > bytes.length || view.getUint32(record, true) !== ZIP64_EOCD_SIGNATURE) return undefined;
    entries = Number(view.getBigUint64(record + 32, true));
    offset = Number(view.getBigUint64(record + 48, true));
  }
  const crcs = new Map<string, number>();
  for (let i = 0; i < entries; i++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== CENTRAL_HEADER_SIGNATURE) return undefined;
    const nameLength = view.getUint16(offset + 28, true);
    if (offset + 46 + nameLength > bytes.length) return undefined;
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const name = Buffer.from(bytes.buffer, bytes.byteOffset + offset + 46, nameLength).toString('utf8');
    crcs.set(name, view.getUint32(offset + 16, true));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return crcs;
}
