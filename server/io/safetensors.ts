// safetensors (Hugging Face's weight format: 8-byte little-endian header length, a JSON header of
// name → {dtype, shape, data_offsets}, then the raw little-endian bytes). Our checkpoints store
// weights this way so Python users open them with `safetensors.torch.load_file`. Written by hand:
// the format is ~40 lines and the npm packages for it are unmaintained placeholders.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { ImageFormatError } from './errors.js';

export type SafetensorsDtype = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
export type SafetensorsArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsArray;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const CTORS: Record<SafetensorsDtype, new (b: ArrayBuffer) => SafetensorsArray> = {
  F32: Float32Array, F64: Float64Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
};
const MAX_HEADER = 100 * 1024 * 1024;

/** Encodes tensors (in the given key order) with optional string metadata. */
export function encodeSafetensors(tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== numel) throw new RangeError(`tensor ${name}: shape [${t.shape}] needs ${numel} values, got ${t.data.length}`);
    const size = numel * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // align the data to 8 bytes, as the reference writer does
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const t of Object.values(tensors)) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** Decodes a safetensors file; every tensor is copied into an aligned array. */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): { tensors: Record<string, SafeTensor>; metadata: Record<string, string> } {
  const fail = (reason: string): never => {
    throw new ImageFormatError(file, reason);
  };
  if (bytes.length < 8) fail('file shorter than the 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER || 8 + headerLength > bytes.length) fail(`header length ${headerLength} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (err) {
    return fail(`header is not valid JSON: ${(err as Error).message}`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors: Record<string, SafeTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: SafetensorsDtype; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) fail(`tensor ${name}: unsupported dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor ${name}: invalid shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !(offsets[0] <= offsets[1]) || offsets[1] > dataLength) fail(`tensor ${name}: data_offsets outside the file`);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (offsets[1] - offsets[0] !== numel * BYTES[dtype]) fail(`tensor ${name}: ${offsets[1] - offsets[0]} bytes for shape [${shape}] of ${dtype}`);
    const copy = new Uint8Array(bytes.subarray(dataStart + offsets[0], dataStart + offsets[1])); // a copy, aligned (Buffer.slice would share memory)
    tensors[name] = { dtype, shape, data: new CTORS[dtype](copy.buffer) };
  }
  return { tensors, metadata };
}

export async function readSafetensors(path: string): Promise<{ tensors: Record<string, SafeTensor>; metadata: Record<string, string> }> {
  return decodeSafetensors(await readFile(path), path);
}

/** Writes atomically (temporary name, then rename): a crash never leaves a half-written checkpoint. */
export async function writeSafetensors(path: string, tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
