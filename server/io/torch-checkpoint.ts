// Reads PyTorch `torch.save` files (a zip: `<name>/data.pkl` + `<name>/data/<key>` storages), as
// nnU-Net v2 writes `checkpoint_final.pth` (REFERENCE §6.4), without libtorch and without running
// any pickled code: tensors are rebuilt from their storages, numpy scalars decoded, the rest kept
// as inert records. Written by hand because no npm library reads these files.
import { readFile } from 'node:fs/promises';
import { unzipSync } from 'fflate';
import { ImageFormatError } from './errors.js';
import { PyGlobal, PyObject, unpickle } from './pickle.js';

export type TorchDtype = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type TorchArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** A tensor from a checkpoint, copied out contiguously (C order). float16/bfloat16 keep their raw bits. */
export class TorchTensor {
  constructor(
    readonly dtype: TorchDtype,
    readonly shape: number[],
    readonly data: TorchArray,
  ) {}
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  /** Values as float32 (float16/bfloat16 widened, integers converted). */
  toFloat32(): Float32Array {
    if (this.data instanceof Float32Array) return this.data;
    if (this.dtype === 'float16' || this.dtype === 'bfloat16') {
      const out = new Float32Array(this.data.length);
      const bits = this.data as Uint16Array;
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      for (let i = 0; i < bits.length; i++) {
        if (this.dtype === 'bfloat16') {
          u[0] = bits[i] << 16;
          out[i] = f[0];
        } else {
          out[i] = halfToFloat(bits[i]);
        }
      }
      return out;
    }
    return Float32Array.from(this.data as ArrayLike<number | bigint>, Number);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const STORAGE_DTYPES: Record<string, [TorchDtype, number]> = {
  FloatStorage: ['float32', 4],
  DoubleStorage: ['float64', 8],
  HalfStorage: ['float16', 2],
  BFloat16Storage: ['bfloat16', 2],
  LongStorage: ['int64', 8],
  IntStorage: ['int32', 4],
  ShortStorage: ['int16', 2],
  CharStorage: ['int8', 1],
  ByteStorage: ['uint8', 1],
  BoolStorage: ['bool', 1],
};

function typedView(dtype: TorchDtype, bytes: Uint8Array): TorchArray {
  // Copy to an aligned buffer; zip members are not aligned for multi-byte views.
  const buf = new Uint8Array(bytes).buffer;
  switch (dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'float16': case 'bfloat16': return new Uint16Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'uint8': case 'bool': return new Uint8Array(buf);
  }
}

interface Storage {
  dtype: TorchDtype;
  data: TorchArray;
}

/** Copies the strided view (offset, size, stride) of a storage into a contiguous array. */
function gather(storage: Storage, offset: number, size: number[], stride: number[]): TorchArray {
  const numel = size.reduce((a, b) => a * b, 1);
  const contiguousStrides = size.map((_, i) => size.slice(i + 1).reduce((a, b) => a * b, 1));
  const isContiguous = size.every((s, i) => s === 1 || stride[i] === contiguousStrides[i]);
  if (isContiguous) return storage.data.slice(offset, offset + numel) as TorchArray;
  const out = new (storage.data.constructor as new (n: number) => TorchArray)(numel);
  const idx = new Array(size.length).fill(0);
  for (let i = 0; i < numel; i++) {
    let src = offset;
    for (let d = 0; d < size.length; d++) src += idx[d] * stride[d];
    (out as unknown as number[])[i] = (storage.data as unknown as number[])[src];
    for (let d = size.length - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

const NUMPY_SCALAR_TYPES: Record<string, (v: DataView, le: boolean) => number | bigint | boolean> = {
  f4: (v, le) => v.getFloat32(0, le),
  f8: (v, le) => v.getFloat64(0, le),
  i4: (v, le) => v.getInt32(0, le),
  i8: (v, le) => v.getBigInt64(0, le),
  u4: (v, le) => v.getUint32(0, le),
  u8: (v, le) => v.getBigUint64(0, le),
  i2: (v, le) => v.getInt16(0, le),
  u2: (v, le) => v.getUint16(0, le),
  i1: (v) => v.getInt8(0),
  u1: (v) => v.getUint8(0),
  b1: (v) => v.getUint8(0) !== 0,
};

function numpyScalar(dtype: unknown, raw: unknown, file: string): unknown {
  if (!(dtype instanceof PyObject) || !(raw instanceof Uint8Array)) return new PyObject(new PyGlobal('numpy', 'scalar'), [dtype, raw]);
  const code = String(dtype.args[0]);
  const state = dtype.state as unknown[] | undefined;
  const littleEndian = !(Array.isArray(state) && state[1] === '>');
  const read = NUMPY_SCALAR_TYPES[code];
  if (!read) throw new ImageFormatError(file, `unsupported numpy scalar type '${code}'`);
  const value = read(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), littleEndian);
  return typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
}

/** Decodes a torch.save zip. Dicts come back as Maps (Python key order and non-string keys preserved). */
export function decodeTorchCheckpoint(bytes: Uint8Array, file: string): unknown {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (err) {
    throw new ImageFormatError(file, `not a PyTorch zip checkpoint (${(err as Error).message}); legacy non-zip torch.save files are not supported`);
  }
  const pklName = Object.keys(entries).find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pklName) throw new ImageFormatError(file, 'no <name>/data.pkl inside: not a torch.save archive');
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const byteorder = entries[`${prefix}byteorder`];
  if (byteorder && new TextDecoder().decode(byteorder).trim() === 'big') throw new ImageFormatError(file, 'big-endian checkpoints are not supported');
  const storages = new Map<string, Storage>();

  const persistentLoad = (pid: unknown): Storage => {
    if (!Array.isArray(pid) || pid[0] !== 'storage') throw new ImageFormatError(file, `unknown persistent id ${JSON.stringify(pid)}`);
    const [, type, key] = pid as [string, PyGlobal, string];
    const found = storages.get(key);
    if (found) return found;
    const spec = STORAGE_DTYPES[type?.name];
    if (!spec) throw new ImageFormatError(file, `unsupported storage type ${type?.qualifiedName}`);
    const member = entries[`${prefix}data/${key}`];
    if (!member) throw new ImageFormatError(file, `storage ${key} is missing from the archive`);
    const storage = { dtype: spec[0], data: typedView(spec[0], member) };
    storages.set(key, storage);
    return storage;
  };

  const reduce = (callee: PyGlobal, args: unknown[]): unknown => {
    switch (callee.qualifiedName) {
      case 'torch._utils._rebuild_tensor_v2': {
        const [storage, offset, size, stride] = args as [Storage, number, number[], number[]];
        return new TorchTensor(storage.dtype, [...size], gather(storage, offset, size, stride));
      }
      case 'torch._utils._rebuild_parameter':
        return args[0];
      case 'torch.device':
        return args.join(':');
      case 'numpy.core.multiarray.scalar':
      case 'numpy._core.multiarray.scalar':
        return numpyScalar(args[0], args[1], file);
      default:
        return undefined;
    }
  };
  try {
    return unpickle(entries[pklName], { persistentLoad, reduce });
  } catch (err) {
    if (err instanceof ImageFormatError) throw err;
    throw new ImageFormatError(file, `cannot read the pickled checkpoint: ${(err as Error).message}`);
  }
}

export async function readTorchCheckpoint(path: string): Promise<unknown> {
  return decodeTorchCheckpoint(await readFile(path), path);
}

/** Recursively turns Maps with string keys into plain objects (other values unchanged). */
export function toPlain(value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    value.forEach((v, k) => {
      out[String(k)] = toPlain(v);
    });
    return out;
  }
  if (Array.isArray(value)) return value.map(toPlain);
  return value;
}
