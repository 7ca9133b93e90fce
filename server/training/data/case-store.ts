// Preprocessed training cases (`<id>.npy` float32 (c,x,y,z), `<id>_seg.npy` int16 (1,x,y,z),
// `<id>.json` with class_locations; REFERENCE §4.5) and their padded crops. nnU-Net memory-maps its
// blosc2 files; we keep whole cases in memory while a byte budget allows and otherwise read only the
// slab of axis-0 rows a crop touches, which C order makes one contiguous range per channel.
import { open, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../../dataset/errors.js';
import { readNpy, type NdArray } from '../../io/npy.js';
import { readNpz } from '../../io/npz.js';
import { preprocessedCaseFiles } from '../../preprocessing/case-files.js';
import type { ClassLocations } from './patch-geometry.js';

/** Cases are cached whole until they would exceed this many bytes. */
export const DEFAULT_CACHE_BYTES = 2 * 1024 ** 3;

interface NpyLayout {
  file: string;
  descr: string;
  fortran: boolean;
  shape: number[];
  dataOffset: number;
}

export interface CaseInfo {
  id: string;
  /** Spatial shape (x, y, z). */
  shape: number[];
  channels: number;
  /** 1, or 2 with a previous-stage segmentation (cascade). */
  segChannels: number;
  classLocations: ClassLocations | undefined;
}

export interface CaseCrop {
  /** float32 (channels, ...size); 0 outside the image. */
  data: Float32Array;
  /** int16 (segChannels, ...size); −1 outside the image. */
  seg: Int16Array;
}

interface Entry {
  info: CaseInfo;
  data: NpyLayout;
  seg: NpyLayout;
  prevFile: string | undefined;
  bytes: number;
  /** Whole arrays once cached. */
  cached?: Promise<{ data: Float32Array; seg: Int16Array }>;
}

const PARTIAL = new Set(['<f4', '<i2']);

async function readLayout(file: string): Promise<NpyLayout> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(65536);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const major = head[6];
    if (bytesRead < 10 || head.toString('latin1', 1, 6) !== 'NUMPY') throw new DatasetError('not an npy file', file);
    const start = major === 1 ? 10 : 12;
    const length = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
    const text = head.toString('latin1', start, Math.min(bytesRead, start + length));
    const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
    const fortran = /'fortran_order':\s*True/.test(text);
    const shapeText = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
    if (descr === undefined || shapeText === undefined) throw new DatasetError('unreadable npy header', file);
    const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
    return { file, descr, fortran, shape, dataOffset: start + length };
  } finally {
    await fh.close();
  }
}

function toFloat32(a: NdArray): Float32Array {
  return a.data instanceof Float32Array ? a.data : Float32Array.from(a.data as ArrayLike<number>);
}
function toInt16(a: NdArray): Int16Array {
  return a.data instanceof Int16Array ? a.data : Int16Array.from(a.data as ArrayLike<number>);
}

/**
 * Copies the box [start, start + size) of a C-order (channels, ...shape) array into a new array
 * pre-filled with `pad`; `rowOffset` is the index of the source's first axis-0 row (for slabs).
 */
export function cropWithPadding<T extends Float32Array | Int16Array>(
  src: T,
  channels: number,
  shape: readonly number[],
  start: readonly number[],
  size: readonly number[],
  pad: number,
  rowOffset = 0,
  rows = shape[0],
): T {
  const [, ny, nz] = shape;
  const [sx, sy, sz] = size;
  const out = new (src.constructor as new (n: number) => T)(channels * sx * sy * sz);
  out.fill(pad);
  const x0 = Math.max(start[0], 0), x1 = Math.min(start[0] + sx, shape[0]);
  const y0 = Math.max(start[1], 0), y1 = Math.min(start[1] + sy, ny);
  const z0 = Math.max(start[2], 0), z1 = Math.min(start[2] + sz, nz);
  if (x1 <= x0 || y1 <= y0 || z1 <= z0) return out;
  for (let c = 0; c < channels; c++) {
    for (let x = x0; x < x1; x++) {
      const srcX = ((c * rows + (x - rowOffset)) * ny) * nz;
      const dstX = ((c * sx + (x - start[0])) * sy) * sz;
      for (let y = y0; y < y1; y++) {
        const s = srcX + y * nz;
        out.set(src.subarray(s + z0, s + z1), dstX + (y - start[1]) * sz + (z0 - start[2]));
      }
    }
  }
  return out;
}

export interface CaseStoreOptions {
  cacheBytes?: number;
  previousStageFolder?: string;
}

export class CaseStore {
  readonly #folder: string;
  readonly #options: CaseStoreOptions;
  readonly #entries = new Map<string, Promise<Entry>>();
  #cachedBytes = 0;

  constructor(folder: string, options: CaseStoreOptions = {}) {
    this.#folder = folder;
    this.#options = options;
  }

  /** Bytes of whole cases held in memory. */
  get cachedBytes(): number {
    return this.#cachedBytes;
  }

  async info(id: string): Promise<CaseInfo> {
    return (await this.#entry(id)).info;
  }

  #entry(id: string): Promise<Entry> {
    let e = this.#entries.get(id);
    if (e === undefined) {
      e = this.#load(id);
      this.#entries.set(id, e);
      // A failed load is retried on the next request rather than cached as a failure.
      e.catch(() => this.#entries.delete(id));
    }
    return e;
  }

  async #load(id: string): Promise<Entry> {
    const files = preprocessedCaseFiles(this.#folder, id);
    for (const f of [files.data, files.seg, files.properties]) {
      if (!existsSync(f)) throw new DatasetError(`preprocessed case '${id}' is incomplete: ${f} is missing (run preprocessing)`, f);
    }
    const [data, seg, propsText] = await Promise.all([readLayout(files.data), readLayout(files.seg), readFile(files.properties, 'utf8')]);
    const shape = data.shape.slice(1);
    if (data.shape.length !== 4 || seg.shape.length !== 4 || seg.shape[0] !== 1 || !shape.every((n, i) => n === seg.shape[i + 1])) {
      throw new DatasetError(`case '${id}': data (${data.shape}) and seg (${seg.shape}) must be (c, x, y, z) and (1, x, y, z)`, files.seg);
    }
    const props = JSON.parse(propsText) as { class_locations?: ClassLocations };
    let prevFile: string | undefined;
    if (this.#options.previousStageFolder !== undefined) {
      prevFile = [join(this.#options.previousStageFolder, `${id}.npz`), join(this.#options.previousStageFolder, `${id}.npy`)].find(existsSync);
      if (prevFile === undefined) {
        throw new DatasetError(`no previous-stage segmentation for case '${id}' (cascade); expected ${id}.npz or ${id}.npy`, this.#options.previousStageFolder);
      }
    }
    const sizes = await Promise.all([files.data, files.seg, ...(prevFile ? [prevFile] : [])].map((f) => stat(f)));
    const info: CaseInfo = { id, shape, channels: data.shape[0], segChannels: prevFile ? 2 : 1, classLocations: props.class_locations };
    return { info, data, seg, prevFile, bytes: sizes.reduce((s, st) => s + st.size, 0) };
  }

  async #previous(entry: Entry): Promise<Int16Array> {
    const file = entry.prevFile as string;
    let arr: NdArray;
    if (file.endsWith('.npz')) {
      const members = await readNpz(file);
      const found = members.seg ?? Object.values(members)[0];
      if (found === undefined) throw new DatasetError('empty npz archive', file);
      arr = found;
    } else {
      arr = await readNpy(file);
    }
    const spatial = arr.shape.length === 4 && arr.shape[0] === 1 ? arr.shape.slice(1) : arr.shape;
    if (spatial.length !== 3 || !spatial.every((n, i) => n === entry.info.shape[i])) {
      throw new DatasetError(`previous-stage segmentation has shape (${arr.shape}), the case (${entry.info.shape})`, file);
    }
    return toInt16(arr);
  }

  async #whole(entry: Entry): Promise<{ data: Float32Array; seg: Int16Array }> {
    const [data, seg, prev] = await Promise.all([
      readNpy(entry.data.file),
      readNpy(entry.seg.file),
      entry.prevFile ? this.#previous(entry) : Promise.resolve(undefined),
    ]);
    let segArr = toInt16(seg);
    if (prev) {
      const both = new Int16Array(segArr.length * 2);
      both.set(segArr);
      both.set(prev, segArr.length);
      segArr = both;
    }
    return { data: toFloat32(data), seg: segArr };
  }

  /** Reads rows [x0, x1) of every channel; null when the file cannot be read in parts. */
  async #slab(layout: NpyLayout, x0: number, x1: number): Promise<Float32Array | Int16Array | null> {
    if (layout.fortran || !PARTIAL.has(layout.descr)) return null;
    const [channels, nx, ny, nz] = layout.shape;
    const itemSize = layout.descr === '<f4' ? 4 : 2;
    const rows = x1 - x0;
    const bytes = Buffer.alloc(channels * rows * ny * nz * itemSize);
    const fh = await open(layout.file, 'r');
    try {
      const perChannel = rows * ny * nz * itemSize;
      for (let c = 0; c < channels; c++) {
        const pos = layout.dataOffset + ((c * nx + x0) * ny * nz) * itemSize;
        await fh.read(bytes, c * perChannel, perChannel, pos);
      }
    } finally {
      await fh.close();
    }
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    return itemSize === 4 ? new Float32Array(ab) : new Int16Array(ab);
  }

  /** The box [start, start + size) of a case: image padded with 0, segmentation with −1. */
  async crop(id: string, start: readonly number[], size: readonly number[]): Promise<CaseCrop> {
    const entry = await this.#entry(id);
    const { shape, channels, segChannels } = entry.info;
    const budget = this.#options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (entry.cached === undefined && this.#cachedBytes + entry.bytes <= budget) {
      this.#cachedBytes += entry.bytes;
      entry.cached = this.#whole(entry);
      entry.cached.catch(() => {
        entry.cached = undefined;
        this.#cachedBytes -= entry.bytes;
      });
    }
    if (entry.cached !== undefined) {
      const whole = await entry.cached;
      return {
        data: cropWithPadding(whole.data, channels, shape, start, size, 0),
        seg: cropWithPadding(whole.seg, segChannels, shape, start, size, -1),
      };
    }
    const x0 = Math.max(0, Math.min(start[0], shape[0]));
    const x1 = Math.max(x0, Math.min(start[0] + size[0], shape[0]));
    const [dataSlab, segSlab] = await Promise.all([this.#slab(entry.data, x0, x1), this.#slab(entry.seg, x0, x1)]);
    if (dataSlab === null || segSlab === null || entry.prevFile !== undefined) {
      // Unusual dtypes, Fortran order or a cascade input: read the whole case for this sample.
      const whole = await this.#whole(entry);
      return {
        data: cropWithPadding(whole.data, channels, shape, start, size, 0),
        seg: cropWithPadding(whole.seg, segChannels, shape, start, size, -1),
      };
    }
    return {
      data: cropWithPadding(dataSlab as Float32Array, channels, shape, start, size, 0, x0, x1 - x0),
      seg: cropWithPadding(segSlab as Int16Array, 1, shape, start, size, -1, x0, x1 - x0),
    };
  }
}
