// NumPy .npy arrays (format versions 1.0, 2.0 and 3.0), as nnU-Net saves softmax probabilities and
// preprocessed data. Writing is byte-identical to np.save (same header text, growth padding and
// 64-byte alignment); reading turns big-endian and Fortran-order files into little-endian C order.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { ImageFormatError } from './errors.js';

export type NpyDtype = 'float32' | 'float16' | 'float64' | 'uint8' | 'int8' | 'int16' | 'int32' | 'bool';

export type NpyData = Float32Array | Float64Array | Uint8Array | Int8Array | Int16Array | Int32Array | Uint16Array;

/**
 * An n-dimensional array in C order (last axis fastest). `float16` data holds the raw IEEE half bits
 * in a Uint16Array (see float16ToFloat32); `bool` holds 0/1 bytes in a Uint8Array.
 */
export interface NdArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
  /** Always C order: Fortran-order files are transposed when read. */
  fortranOrder?: false;
}

interface DtypeInfo {
  dtype: NpyDtype;
  descr: string;
  size: number;
  make: (buffer: ArrayBuffer, length: number) => NpyData;
  type: new (length: number) => NpyData;
}

const DTYPES: DtypeInfo[] = [
  { dtype: 'float32', descr: '<f4', size: 4, make: (b, n) => new Float32Array(b, 0, n), type: Float32Array },
  { dtype: 'float16', descr: '<f2', size: 2, make: (b, n) => new Uint16Array(b, 0, n), type: Uint16Array },
  { dtype: 'float64', descr: '<f8', size: 8, make: (b, n) => new Float64Array(b, 0, n), type: Float64Array },
  { dtype: 'uint8', descr: '|u1', size: 1, make: (b, n) => new Uint8Array(b, 0, n), type: Uint8Array },
  { dtype: 'int8', descr: '|i1', size: 1, make: (b, n) => new Int8Array(b, 0, n), type: Int8Array },
  { dtype: 'int16', descr: '<i2', size: 2, make: (b, n) => new Int16Array(b, 0, n), type: Int16Array },
  { dtype: 'int32', descr: '<i4', size: 4, make: (b, n) => new Int32Array(b, 0, n), type: Int32Array },
  { dtype: 'bool', descr: '|b1', size: 1, make: (b, n) => new Uint8Array(b, 0, n), type: Uint8Array },
];

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ARRAY_ALIGN = 64;
/** numpy leaves room in the header for the growth axis to reach this many digits (np.save ≥ 1.23). */
const GROWTH_AXIS_MAX_DIGITS = 21;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function dtypeInfo(dtype: NpyDtype): DtypeInfo {
  const info = DTYPES.find((d) => d.dtype === dtype);
  if (!info) throw new TypeError(`unknown npy dtype '${String(dtype)}'`);
  return info;
}

function shapeProduct(shape: readonly number[]): number {
  return shape.reduce((p, n) => p * n, 1);
}

function pythonTuple(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** Encodes `a` as a .npy file exactly as np.save would (version 1.0, or 2.0 for huge headers). */
export function encodeNpy(a: NdArray): Buffer {
  const info = dtypeInfo(a.dtype);
  for (const n of a.shape) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`npy shape ${JSON.stringify(a.shape)} has an invalid dimension`);
  }
  if (!(a.data instanceof info.type)) {
    throw new TypeError(`npy dtype ${a.dtype} needs a ${info.type.name}, got ${a.data.constructor.name}`);
  }
  const count = shapeProduct(a.shape);
  if (a.data.length !== count) {
    throw new RangeError(`npy shape ${pythonTuple(a.shape)} needs ${count} elements, data has ${a.data.length}`);
  }

  let dict = `{'descr': '${info.descr}', 'fortran_order': False, 'shape': ${pythonTuple(a.shape)}, }`;
  if (a.shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(a.shape[0]).length));
  let version = 1;
  let prefixLength = MAGIC.length + 2 + 2;
  let padding = ARRAY_ALIGN - ((prefixLength + dict.length + 1) % ARRAY_ALIGN);
  if (dict.length + 1 + padding > 0xffff) {
    version = 2;
    prefixLength = MAGIC.length + 2 + 4;
    padding = ARRAY_ALIGN - ((prefixLength + dict.length + 1) % ARRAY_ALIGN);
  }
  const headerLength = dict.length + padding + 1;
  const dataBytes = count * info.size;
  const out = Buffer.alloc(prefixLength + headerLength + dataBytes);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) out.writeUInt16LE(headerLength, 8);
  else out.writeUInt32LE(headerLength, 8);
  out.write(dict + ' '.repeat(padding) + '\n', prefixLength, 'latin1');

  const offset = prefixLength + headerLength;
  out.set(new Uint8Array(a.data.buffer, a.data.byteOffset, dataBytes), offset);
  if (a.dtype === 'bool') {
    for (let i = offset; i < out.length; i++) out[i] = out[i] ? 1 : 0;
  }
  if (!HOST_LITTLE_ENDIAN) swapBytes(out.subarray(offset), info.size);
  return out;
}

/** Decodes a .npy file (any endianness, C or Fortran order) into a little-endian C-order array. */
export function decodeNpy(bytes: Uint8Array, file = '<npy>'): NdArray {
  const fail = (reason: string): never => {
    throw new ImageFormatError(file, reason);
  };
  if (bytes.length < 10) fail(`truncated npy file: ${bytes.length} bytes, shorter than the 10-byte preamble`);
  if (!MAGIC.every((b, i) => bytes[i] === b)) fail('not an npy file: bad magic string (expected \\x93NUMPY)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = 10;
    headerLength = view.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail(`truncated npy file: ${bytes.length} bytes, shorter than the 12-byte preamble`);
    headerStart = 12;
    headerLength = view.getUint32(8, true);
  } else {
    return fail(`unsupported npy format version ${major}.${bytes[7]}`);
  }
  if (headerStart + headerLength > bytes.length) {
    fail(`truncated npy file: header of ${headerLength} bytes runs past the end of the file (${bytes.length} bytes)`);
  }
  const headerBytes = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLength);
  const header = parseHeader(headerBytes.toString(major === 3 ? 'utf8' : 'latin1'), fail);

  const info = parseDescr(header.descr, fail);
  const count = shapeProduct(header.shape);
  const dataStart = headerStart + headerLength;
  const dataBytes = bytes.length - dataStart;
  if (dataBytes !== count * info.size) {
    const what = dataBytes < count * info.size ? 'truncated npy data' : 'npy data longer than its shape';
    fail(`${what}: shape ${pythonTuple(header.shape)} of ${info.descr} needs ${count * info.size} bytes, file has ${dataBytes}`);
  }

  const copy = new Uint8Array(count * info.size);
  copy.set(bytes.subarray(dataStart, dataStart + copy.length));
  if (info.size > 1 && info.bigEndian === HOST_LITTLE_ENDIAN) swapBytes(copy, info.size);
  if (info.dtype === 'bool') {
    for (let i = 0; i < copy.length; i++) copy[i] = copy[i] ? 1 : 0;
  }
  let data = info.make(copy.buffer, count);
  if (header.fortranOrder && header.shape.length > 1) data = fortranToC(data, header.shape, info);
  return { dtype: info.dtype, shape: header.shape, data };
}

/** Reads a .npy file; format problems are ImageFormatErrors naming `path`. */
export async function readNpy(path: string): Promise<NdArray> {
  return decodeNpy(await readFile(path), path);
}

/** Writes a .npy file atomically (temporary file and rename). */
export async function writeNpy(path: string, a: NdArray): Promise<void> {
  await writeFileAtomic(path, encodeNpy(a));
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = bytes[lo];
      bytes[lo] = bytes[hi];
      bytes[hi] = t;
    }
  }
}

/** Reorders Fortran-order data (first axis fastest) into C order (last axis fastest). */
function fortranToC(src: NpyData, shape: readonly number[], info: DtypeInfo): NpyData {
  const out = new info.type(src.length);
  const rank = shape.length;
  const fStrides = new Array<number>(rank);
  for (let d = 0, s = 1; d < rank; d++) {
    fStrides[d] = s;
    s *= shape[d];
  }
  const index = new Array<number>(rank).fill(0);
  let f = 0;
  for (let c = 0; c < src.length; c++) {
    out[c] = src[f];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      f += fStrides[d];
      if (index[d] < shape[d]) break;
      f -= fStrides[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

function parseDescr(descr: PyValue, fail: (reason: string) => never): DtypeInfo & { bigEndian: boolean } {
  if (typeof descr !== 'string') return fail(`unsupported npy dtype ${pyRepr(descr)} (structured dtypes are not supported)`);
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(descr);
  const info = m && DTYPES.find((d) => d.descr.slice(1) === `${m[2]}${m[3]}`);
  if (!m || !info) {
    return fail(`unsupported npy dtype '${descr}' (supported: ${DTYPES.map((d) => `${d.descr} ${d.dtype}`).join(', ')})`);
  }
  const bigEndian = m[1] === '>' || (m[1] === '=' && !HOST_LITTLE_ENDIAN);
  return { ...info, bigEndian };
}

// --- Header: a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }

type PyValue = string | number | boolean | null | PyValue[];

interface NpyHeader {
  descr: PyValue;
  fortranOrder: boolean;
  shape: number[];
}

function parseHeader(text: string, fail: (reason: string) => never): NpyHeader {
  let dict: Map<string, PyValue>;
  try {
    dict = new PyLiteralParser(text).parseDict();
  } catch (err) {
    return fail(`npy header is not a Python dict literal: ${(err as Error).message}`);
  }
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!dict.has(key)) fail(`npy header has no '${key}' key: ${text.trim()}`);
  }
  const fortranOrder = dict.get('fortran_order');
  if (typeof fortranOrder !== 'boolean') fail(`npy header 'fortran_order' is not True or False: ${pyRepr(fortranOrder ?? null)}`);
  const shape = dict.get('shape');
  if (!Array.isArray(shape) || !shape.every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0)) {
    fail(`npy header 'shape' is not a tuple of non-negative integers: ${pyRepr(shape ?? null)}`);
  }
  return { descr: dict.get('descr') as PyValue, fortranOrder: fortranOrder as boolean, shape: shape as number[] };
}

function pyRepr(v: PyValue): string {
  if (Array.isArray(v)) return `(${v.map(pyRepr).join(', ')})`;
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return v === null ? 'None' : String(v);
}

/** Just enough of Python's literal syntax for npy headers: dicts, tuples, lists, str, int, bool, None. */
class PyLiteralParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDict(): Map<string, PyValue> {
    this.skipSpace();
    this.expect('{');
    const dict = new Map<string, PyValue>();
    for (;;) {
      this.skipSpace();
      if (this.peek() === '}') break;
      const key = this.parseValue();
      if (typeof key !== 'string') throw new Error(`dict key ${pyRepr(key)} is not a string`);
      this.skipSpace();
      this.expect(':');
      dict.set(key, this.parseValue());
      this.skipSpace();
      if (this.peek() !== ',') break;
      this.pos++;
    }
    this.skipSpace();
    this.expect('}');
    this.skipSpace();
    if (this.pos !== this.text.length) throw new Error(`unexpected text after the dict at offset ${this.pos}`);
    return dict;
  }

  private parseValue(): PyValue {
    this.skipSpace();
    const c = this.peek();
    if (c === "'" || c === '"') return this.parseString(c);
    if (c === '(' || c === '[') return this.parseSequence(c === '(' ? ')' : ']');
    const word = /^(-?\d+)L?|^(True|False|None)\b/.exec(this.text.slice(this.pos));
    if (!word) throw new Error(`unexpected ${c === undefined ? 'end of header' : `'${c}'`} at offset ${this.pos}`);
    this.pos += word[0].length;
    if (word[1] !== undefined) return Number(word[1]); // Python 2 wrote longs as "3L"
    return word[2] === 'None' ? null : word[2] === 'True';
  }

  private parseSequence(close: string): PyValue[] {
    this.pos++;
    const items: PyValue[] = [];
    for (;;) {
      this.skipSpace();
      if (this.peek() === close) break;
      items.push(this.parseValue());
      this.skipSpace();
      if (this.peek() !== ',') break;
      this.pos++;
    }
    this.expect(close);
    return items;
  }

  private parseString(quote: string): string {
    const end = this.text.indexOf(quote, this.pos + 1);
    if (end < 0) throw new Error(`unterminated string at offset ${this.pos}`);
    const s = this.text.slice(this.pos + 1, end);
    this.pos = end + 1;
    return s;
  }

  private peek(): string | undefined {
    return this.text[this.pos];
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  private expect(c: string): void {
    if (this.text[this.pos] !== c) throw new Error(`expected '${c}' at offset ${this.pos}`);
    this.pos++;
  }
}

// --- float16 <-> float32, bit for bit as numpy's npy_floatbits_to_halfbits / npy_halfbits_to_floatbits.

/** Converts to IEEE half bits with round-to-nearest-even; overflow → ±inf, NaN stays NaN. */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBits(bits[i]);
  return out;
}

function halfBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = f & 0x7f800000;
  if (exp >= 0x47800000) {
    const sig = f & 0x007fffff;
    if (exp === 0x7f800000 && sig !== 0) return sign | 0x7c00 | (sig >>> 13 || 1); // keep it a NaN
    return sign | 0x7c00; // inf, or overflow to inf
  }
  if (exp <= 0x38000000) {
    if (exp < 0x33000000) return sign; // too small even for a subnormal half
    const e = exp >>> 23;
    let sig = (0x00800000 + (f & 0x007fffff)) >>> (113 - e);
    // Ties to even: the bits lost by the shift above are checked in the original (f & 0x7ff).
    if ((sig & 0x3fff) !== 0x1000 || (f & 0x7ff) !== 0) sig += 0x1000;
    return sign + (sig >>> 13); // a carry into the exponent gives the smallest normal, correctly
  }
  const hExp = (exp - 0x38000000) >>> 13;
  let sig = f & 0x007fffff;
  if ((sig & 0x3fff) !== 0x1000) sig += 0x1000;
  return sign + hExp + (sig >>> 13); // a carry may round up to inf, which is right
}

/** Converts IEEE half bits to float32 exactly (every half value is a float32). */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = (h & 0x8000) << 16;
    const exp = h & 0x7c00;
    if (exp === 0) {
      const sig = h & 0x3ff;
      out[i] = sig === 0 ? 0 : sig * 2 ** -24; // subnormal (exact in float32)
      bits[i] |= sign;
    } else if (exp === 0x7c00) {
      bits[i] = (sign | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
    } else {
      bits[i] = (sign | (((h & 0x7fff) + 0x1c000) << 13)) >>> 0;
    }
  }
  return out;
}

let halfTable: Float32Array | undefined;

/**
 * Rounds every value to float16 precision in place (float32 storage), as a cast to half and back.
 * Inference uses it to reproduce nnU-Net's float16 accumulators exactly.
 */
export function roundToHalfInPlace(a: Float32Array): Float32Array {
  halfTable ??= float16ToFloat32(Uint16Array.from({ length: 65536 }, (_, i) => i));
  const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < a.length; i++) a[i] = halfTable[halfBits(bits[i])];
  return a;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** One value rounded as torch computes `half_tensor op= float`: to float32 first, then to float16. */
export function roundToHalfValue(v: number): number {
  halfTable ??= float16ToFloat32(Uint16Array.from({ length: 65536 }, (_, i) => i));
  scratch[0] = v;
  return halfTable[halfBits(scratchBits[0])];
}
