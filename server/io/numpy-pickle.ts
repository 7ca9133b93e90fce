// numpy values inside Python pickles (nnU-Net's CASE.pkl properties, checkpoint logs): arrays
// (`numpy.core.multiarray._reconstruct` + BUILD state) and scalars become plain JS numbers and
// nested arrays; dicts become objects. Nothing is executed; unknown objects stay as records.
import { PyObject, unpickle } from './pickle.js';

const READERS: Record<string, [number, (v: DataView, o: number, le: boolean) => number]> = {
  f8: [8, (v, o, le) => v.getFloat64(o, le)],
  f4: [4, (v, o, le) => v.getFloat32(o, le)],
  i8: [8, (v, o, le) => Number(v.getBigInt64(o, le))],
  i4: [4, (v, o, le) => v.getInt32(o, le)],
  i2: [2, (v, o, le) => v.getInt16(o, le)],
  i1: [1, (v, o) => v.getInt8(o)],
  u8: [8, (v, o, le) => Number(v.getBigUint64(o, le))],
  u4: [4, (v, o, le) => v.getUint32(o, le)],
  u2: [2, (v, o, le) => v.getUint16(o, le)],
  u1: [1, (v, o) => v.getUint8(o)],
  b1: [1, (v, o) => v.getUint8(o)],
};

function dtypeOf(d: unknown): { code: string; littleEndian: boolean } | undefined {
  if (!(d instanceof PyObject) || d.callee.qualifiedName !== 'numpy.dtype') return undefined;
  const state = d.state as unknown[] | undefined;
  return { code: String(d.args[0]), littleEndian: !(Array.isArray(state) && state[1] === '>') };
}

function reshape(flat: number[], shape: number[]): unknown {
  if (shape.length === 0) return flat[0];
  if (shape.length === 1) return flat;
  const step = flat.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) => reshape(flat.slice(i * step, (i + 1) * step), shape.slice(1)));
}

function convert(value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    value.forEach((v, k) => (out[String(k)] = convert(v)));
    return out;
  }
  if (Array.isArray(value)) return value.map(convert);
  if (value instanceof PyObject) {
    const name = value.callee.qualifiedName.replace('numpy._core', 'numpy.core');
    if (name === 'numpy.core.multiarray._reconstruct' && Array.isArray(value.state)) {
      const [, shape, dtype, fortran, raw] = value.state as [number, number[], unknown, boolean, Uint8Array | string];
      const dt = dtypeOf(dtype);
      const reader = dt && READERS[dt.code];
      if (!reader || fortran) return value;
      const bytes = typeof raw === 'string' ? Uint8Array.from(raw, (c) => c.charCodeAt(0)) : raw;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const flat = Array.from({ length: bytes.length / reader[0] }, (_, i) => reader[1](view, i * reader[0], dt.littleEndian));
      return reshape(flat, shape.map(Number));
    }
    if (name === 'numpy.core.multiarray.scalar') {
      const dt = dtypeOf(value.args[0]);
      const raw = value.args[1];
      const reader = dt && READERS[dt.code];
      if (reader && raw instanceof Uint8Array) return reader[1](new DataView(raw.buffer, raw.byteOffset, raw.byteLength), 0, dt.littleEndian);
    }
  }
  return value;
}

/** Unpickles plain data with numpy arrays/scalars converted to numbers. */
export function unpickleWithNumpy(bytes: Uint8Array): unknown {
  return convert(unpickle(bytes));
}
