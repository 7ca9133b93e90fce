// NIfTI reader/writer: round trips for every datatype, affines (sform, qform, pixdim), NIfTI-2 and
// big-endian headers crafted byte by byte, scaling, channels, real dataset files, and refusals.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ImageFormatError, VolumeTooLargeError } from '../../server/io/errors.js';
import {
  decodeNifti,
  encodeNifti,
  isAllNaN,
  readNifti,
  toFloat32,
  writeNifti,
  type NiftiDatatype,
  type NiftiImage,
  type VoxelArray,
} from '../../server/io/nifti.js';

const DATA = '/work/shared/data';

// ---------------------------------------------------------------------------------------------
// Hand-made headers, independent of our writer: offsets from nifti1.h and nifti2.h.

interface Craft {
  version?: 1 | 2;
  littleEndian?: boolean;
  /** Full dim[0..7]; missing entries are 1. */
  dim: number[];
  datatype: number;
  bitpix?: number;
  /** Full pixdim[0..7]; missing entries are 1. */
  pixdim?: number[];
  voxOffset?: number;
  slope?: number;
  inter?: number;
  qformCode?: number;
  sformCode?: number;
  quatern?: [number, number, number];
  qoffset?: [number, number, number];
  srow?: number[][];
  /** Replaces the magic bytes. */
  magic?: number[];
  /** Voxel bytes exactly as stored. */
  data?: Uint8Array;
}

const BITPIX: Record<number, number> = { 2: 8, 256: 8, 4: 16, 512: 16, 8: 32, 768: 32, 16: 32, 64: 64 };

function craft(c: Craft): Uint8Array {
  const version = c.version ?? 1;
  const le = c.littleEndian ?? true;
  const headerBytes = version === 1 ? 348 : 540;
  const voxOffset = c.voxOffset ?? headerBytes + 4;
  const data = c.data ?? new Uint8Array(0);
  const out = new Uint8Array(Math.max(voxOffset, headerBytes + 4) + data.length);
  const v = new DataView(out.buffer);
  const dim = Array.from({ length: 8 }, (_, i) => c.dim[i] ?? 1);
  const pixdim = Array.from({ length: 8 }, (_, i) => c.pixdim?.[i] ?? 1);
  const srow = c.srow ?? [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
  ];
  if (version === 1) {
    v.setInt32(0, 348, le);
    dim.forEach((d, i) => v.setInt16(40 + 2 * i, d, le));
    v.setInt16(70, c.datatype, le);
    v.setInt16(72, c.bitpix ?? BITPIX[c.datatype] ?? 8, le);
    pixdim.forEach((p, i) => v.setFloat32(76 + 4 * i, p, le));
    v.setFloat32(108, voxOffset, le);
    v.setFloat32(112, c.slope ?? 0, le);
    v.setFloat32(116, c.inter ?? 0, le);
    v.setInt16(252, c.qformCode ?? 0, le);
    v.setInt16(254, c.sformCode ?? 0, le);
    (c.quatern ?? [0, 0, 0]).forEach((q, i) => v.setFloat32(256 + 4 * i, q, le));
    (c.qoffset ?? [0, 0, 0]).forEach((q, i) => v.setFloat32(268 + 4 * i, q, le));
    srow.forEach((row, r) => row.forEach((x, k) => v.setFloat32(280 + 4 * (4 * r + k), x, le)));
    out.set(c.magic ?? [0x6e, 0x2b, 0x31, 0], 344);
  } else {
    v.setInt32(0, 540, le);
    out.set(c.magic ?? [0x6e, 0x2b, 0x32, 0, 0x0d, 0x0a, 0x1a, 0x0a], 4);
    v.setInt16(12, c.datatype, le);
    v.setInt16(14, c.bitpix ?? BITPIX[c.datatype] ?? 8, le);
    dim.forEach((d, i) => v.setBigInt64(16 + 8 * i, BigInt(d), le));
    pixdim.forEach((p, i) => v.setFloat64(104 + 8 * i, p, le));
    v.setBigInt64(168, BigInt(voxOffset), le);
    v.setFloat64(176, c.slope ?? 0, le);
    v.setFloat64(184, c.inter ?? 0, le);
    v.setInt32(344, c.qformCode ?? 0, le);
    v.setInt32(348, c.sformCode ?? 0, le);
    (c.quatern ?? [0, 0, 0]).forEach((q, i) => v.setFloat64(352 + 8 * i, q, le));
    (c.qoffset ?? [0, 0, 0]).forEach((q, i) => v.setFloat64(376 + 8 * i, q, le));
    srow.forEach((row, r) => row.forEach((x, k) => v.setFloat64(400 + 8 * (4 * r + k), x, le)));
  }
  out.set(data, voxOffset);
  return out;
}

/** Voxel bytes of `values` stored as int16 in the given byte order. */
function int16Bytes(values: number[], le = true): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setInt16(2 * i, x, le));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

const IDENTITY = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

function assertAffineClose(actual: number[][], expected: number[][], tol = 1e-5): void {
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      assert.ok(
        Math.abs(actual[r][c] - expected[r][c]) <= tol,
        `affine[${r}][${c}] = ${actual[r][c]}, expected ${expected[r][c]}\n${JSON.stringify(actual)}`,
      );
    }
  }
}

/** Rz(a) Ry(b) Rx(c) diag(scale), with `translation` in the last column. */
function obliqueAffine(angles: [number, number, number], scale: number[], translation: number[]): number[][] {
  const [a, b, c] = angles;
  const rz = [[Math.cos(a), -Math.sin(a), 0], [Math.sin(a), Math.cos(a), 0], [0, 0, 1]];
  const ry = [[Math.cos(b), 0, Math.sin(b)], [0, 1, 0], [-Math.sin(b), 0, Math.cos(b)]];
  const rx = [[1, 0, 0], [0, Math.cos(c), -Math.sin(c)], [0, Math.sin(c), Math.cos(c)]];
  const mul = (p: number[][], q: number[][]): number[][] =>
    p.map((row) => q[0].map((_, j) => row.reduce((s, x, k) => s + x * q[k][j], 0)));
  const r = mul(mul(rz, ry), rx);
  return [
    [...r[0].map((x, j) => x * scale[j]), translation[0]],
    [...r[1].map((x, j) => x * scale[j]), translation[1]],
    [...r[2].map((x, j) => x * scale[j]), translation[2]],
    [0, 0, 0, 1],
  ];
}

/** Zeroes sform_code of an uncompressed NIfTI-1 file so readers fall back to the qform. */
function withoutSform(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setInt16(254, 0, true);
  return copy;
}

function ramp(type: NiftiDatatype, n: number): VoxelArray {
  const ranges: Record<NiftiDatatype, [number, number]> = {
    uint8: [0, 255],
    int8: [-128, 127],
    int16: [-32768, 32767],
    uint16: [0, 65535],
    int32: [-(2 ** 31), 2 ** 31 - 1],
    uint32: [0, 2 ** 32 - 1],
    float32: [-1e30, 1e30],
    float64: [-1e300, 1e300],
  };
  const [lo, hi] = ranges[type];
  const isFloat = type.startsWith('float');
  const values = Array.from({ length: n }, (_, i) => {
    if (i === 0) return lo;
    if (i === n - 1) return hi;
    return isFloat ? (i - n / 2) * 1.375 : Math.round(lo + ((hi - lo) * i) / (n - 1));
  });
  const ctors = { uint8: Uint8Array, int8: Int8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, float32: Float32Array, float64: Float64Array };
  return new ctors[type](values);
}

function expectFormatError(fn: () => unknown, pattern: RegExp, file = 'x.nii'): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ImageFormatError, `expected ImageFormatError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.match(err.reason, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------

describe('NIfTI reader and writer', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nifti-test-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('round trips', () => {
    const types: NiftiDatatype[] = ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64'];
    for (const type of types) {
      for (const ending of ['.nii', '.nii.gz']) {
        it(`keeps ${type} voxels, shape, spacing and affine through ${ending}`, async () => {
          const affine = [
            [-0.75, 0, 0, 12.5],
            [0, 0.75, 0, -30.25],
            [0, 0, 2.5, 7],
            [0, 0, 0, 1],
          ];
          const image = { data: ramp(type, 3 * 4 * 5), shape: [3, 4, 5] as [number, number, number], channels: 1, spacing: [2.5, 0.75, 0.75] as [number, number, number], affine };
          const path = join(dir, `image${ending}`);
          await writeNifti(path, image, { datatype: type });
          const back = await readNifti(path);
          assert.equal(back.datatype, type);
          assert.equal(back.niftiVersion, 1);
          assert.equal(back.data.constructor, image.data.constructor);
          assert.deepEqual(Array.from(back.data), Array.from(image.data));
          assert.deepEqual(back.shape, [3, 4, 5]);
          assert.equal(back.channels, 1);
          assert.deepEqual(back.spacing, [2.5, 0.75, 0.75]);
          assertAffineClose(back.affine, affine, 0);
        });
      }
    }

    it('lays voxels out with the NIfTI i index fastest: data[k][j][i] in shape [dim3, dim2, dim1]', () => {
      // dim1 = 4, dim2 = 3, dim3 = 2; the voxel at (i, j, k) holds 100k + 10j + i.
      const values: number[] = [];
      for (let k = 0; k < 2; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 4; i++) values.push(100 * k + 10 * j + i);
      const bytes = craft({ dim: [3, 4, 3, 2], datatype: 4, pixdim: [1, 0.5, 0.6, 0.7], data: int16Bytes(values) });
      const image = decodeNifti(bytes, 'x.nii');
      assert.deepEqual(image.shape, [2, 3, 4]);
      assert.ok(Math.abs(image.spacing[0] - 0.7) < 1e-6 && Math.abs(image.spacing[2] - 0.5) < 1e-6);
      const at = (k: number, j: number, i: number): number => image.data[(k * 3 + j) * 4 + i];
      assert.equal(at(1, 2, 3), 123);
      assert.equal(at(0, 1, 2), 12);
    });

    it('keeps two channels in dim4, channel-major', async () => {
      const data = new Float32Array(2 * 2 * 3 * 4).map((_, i) => (i < 24 ? i : -i));
      const path = join(dir, 'two.nii.gz');
      await writeNifti(path, { data, shape: [2, 3, 4], channels: 2, spacing: [1, 1, 1], affine: IDENTITY }, { datatype: 'float32' });
      const back = await readNifti(path);
      assert.equal(back.channels, 2);
      assert.deepEqual(back.shape, [2, 3, 4]);
      assert.deepEqual(Array.from(back.data), Array.from(data));
      const raw = new DataView(decodeRawHeader(path).buffer);
      assert.equal(raw.getInt16(40, true), 4);
      assert.equal(raw.getInt16(48, true), 2);
    });

    it('writes an atomic single-file NIfTI-1 header: vox_offset 352, no extension, mm, sform and qform code 1', async () => {
      const path = join(dir, 'seg.nii');
      await writeNifti(path, { data: new Uint8Array(24), shape: [2, 3, 4], channels: 1, spacing: [3, 2, 1], affine: obliqueAffine([0.3, 0, 0], [1, 2, 3], [1, 2, 3]) }, { datatype: 'uint8' });
      assert.deepEqual(readdirSync(dir), ['seg.nii']);
      const bytes = readFileSync(path);
      const v = new DataView(bytes.buffer, bytes.byteOffset);
      assert.equal(bytes.length, 352 + 24);
      assert.equal(v.getInt32(0, true), 348);
      assert.equal(v.getFloat32(108, true), 352);
      assert.deepEqual([...bytes.subarray(348, 352)], [0, 0, 0, 0]);
      assert.equal(v.getUint8(123), 2);
      assert.equal(v.getInt16(252, true), 1);
      assert.equal(v.getInt16(254, true), 1);
      assert.equal(v.getInt16(70, true), 2);
      assert.equal(v.getInt16(72, true), 8);
      assert.equal(bytes.toString('latin1', 344, 348), 'n+1\0');
      // pixdim from the affine's column norms, in NIfTI order.
      assert.deepEqual([1, 2, 3].map((i) => Math.round(v.getFloat32(76 + 4 * i, true) * 1e5) / 1e5), [1, 2, 3]);
    });

    it('rounds half to even and clamps when converting to an integer type; NaN becomes 0', () => {
      const data = new Float32Array([-3, 2.5, 3.5, -2.5, 0.4999, 254.6, 300, NaN, -Infinity, Infinity, 1.5, 7]);
      const back = decodeNifti(encodeNifti({ data, shape: [1, 3, 4], channels: 1, spacing: [1, 1, 1], affine: IDENTITY }, { datatype: 'uint8' }, false), 'x.nii');
      assert.deepEqual(Array.from(back.data), [0, 2, 4, 0, 0, 255, 255, 0, 0, 255, 2, 7]);
      const wide = decodeNifti(encodeNifti({ data: new Int32Array([-70000, 70000, -5, 5]), shape: [1, 2, 2], channels: 1, spacing: [1, 1, 1], affine: IDENTITY }, { datatype: 'int16' }, false), 'x.nii');
      assert.deepEqual(Array.from(wide.data), [-32768, 32767, -5, 5]);
    });
  });

  describe('affines', () => {
    for (const flip of [false, true]) {
      it(`keeps an oblique affine${flip ? ' with a flipped axis' : ''} in both sform and qform`, () => {
        const scale = flip ? [-0.8, 1.2, 2.5] : [0.8, 1.2, 2.5];
        const affine = obliqueAffine([0.4, -0.25, 0.9], scale, [-90.5, 12.25, 30.125]);
        const image = { data: new Int16Array(24).map((_, i) => i), shape: [2, 3, 4] as [number, number, number], channels: 1, spacing: [2.5, 1.2, 0.8] as [number, number, number], affine };
        const bytes = encodeNifti(image, { datatype: 'int16' }, false);
        const fromSform = decodeNifti(bytes, 'x.nii');
        assertAffineClose(fromSform.affine, affine);
        assert.deepEqual(fromSform.spacing.map((s) => Math.round(s * 1e5) / 1e5), [2.5, 1.2, 0.8]);
        const fromQform = decodeNifti(withoutSform(bytes), 'x.nii');
        assertAffineClose(fromQform.affine, affine);
        assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getFloat32(76, true), flip ? -1 : 1);
      });
    }

    it('writes a sheared affine exactly to the sform and the closest rotation to the qform', () => {
      const affine = [
        [1, 0.2, 0, 5],
        [0, 1, 0, 6],
        [0, 0, 2, 7],
        [0, 0, 0, 1],
      ];
      const bytes = encodeNifti({ data: new Uint8Array(8), shape: [2, 2, 2], channels: 1, spacing: [2, 1, 1], affine }, { datatype: 'uint8' }, false);
      assertAffineClose(decodeNifti(bytes, 'x.nii').affine, affine);
      const q = decodeNifti(withoutSform(bytes), 'x.nii').affine;
      // Same column lengths and offset, orthogonal columns, and near the sheared matrix.
      const col = (m: number[][], c: number): number[] => [m[0][c], m[1][c], m[2][c]];
      const dot = (a: number[], b: number[]): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(Math.hypot(...col(q, c)) - Math.hypot(...col(affine, c))) < 1e-5);
      assert.ok(Math.abs(dot(col(q, 0), col(q, 1))) < 1e-5);
      assert.deepEqual([q[0][3], q[1][3], q[2][3]], [5, 6, 7]);
      assertAffineClose(q, affine, 0.15);
    });

    it('reads a qform-only header (sform_code 0, qform_code 1) with qfac -1', () => {
      // 90 degrees about z: quaternion (a, b, c, d) = (cos 45, 0, 0, sin 45); qfac -1 flips k.
      const s = Math.SQRT1_2;
      const bytes = craft({
        dim: [3, 2, 2, 2],
        datatype: 2,
        pixdim: [-1, 2, 3, 4],
        qformCode: 1,
        sformCode: 0,
        quatern: [0, 0, s],
        qoffset: [10, -20, 30],
        srow: [[9, 9, 9, 9], [9, 9, 9, 9], [9, 9, 9, 9]],
        data: new Uint8Array(8).fill(1),
      });
      const image = decodeNifti(bytes, 'x.nii');
      assertAffineClose(image.affine, [
        [0, -3, 0, 10],
        [2, 0, 0, -20],
        [0, 0, -4, 30],
        [0, 0, 0, 1],
      ]);
      assert.deepEqual(image.spacing, [4, 3, 2]);
    });

    it('prefers the sform when both codes are set, as nibabel does', () => {
      const srow = [[-2, 0, 0, 1], [0, 3, 0, 2], [0, 0, 4, 3]];
      const bytes = craft({ dim: [3, 2, 2, 2], datatype: 2, pixdim: [1, 2, 3, 4], qformCode: 2, sformCode: 1, srow, data: new Uint8Array(8) });
      assertAffineClose(decodeNifti(bytes, 'x.nii').affine, [...srow, [0, 0, 0, 1]]);
    });

    it('falls back to diag(pixdim) when neither sform nor qform is set', () => {
      const bytes = craft({ dim: [3, 2, 2, 2], datatype: 2, pixdim: [1, 0.5, 0.25, 2], data: new Uint8Array(8) });
      const image = decodeNifti(bytes, 'x.nii');
      assertAffineClose(image.affine, [
        [0.5, 0, 0, 0],
        [0, 0.25, 0, 0],
        [0, 0, 2, 0],
        [0, 0, 0, 1],
      ]);
      assert.deepEqual(image.spacing, [2, 0.25, 0.5]);
    });

    it('gives a 2D file shape [1, dim2, dim1] and the pseudo-3D spacing 999 x max', () => {
      const image = decodeNifti(craft({ dim: [2, 3, 2], datatype: 2, pixdim: [1, 0.5, 0.75, 0], data: new Uint8Array(6) }), 'x.nii');
      assert.deepEqual(image.shape, [1, 2, 3]);
      assert.deepEqual(image.spacing, [999 * 0.75, 0.75, 0.5]);
    });
  });

  describe('header variants', () => {
    it('reads a NIfTI-2 file (little- and big-endian) with its sform', () => {
      for (const le of [true, false]) {
        const srow = [[1.5, 0, 0, -10], [0, 2.5, 0, 20], [0, 0, 3.5, 30]];
        const bytes = craft({ version: 2, littleEndian: le, dim: [3, 3, 2, 1], datatype: 4, pixdim: [1, 1.5, 2.5, 3.5], sformCode: 2, srow, data: int16Bytes([1, -2, 3, -4, 5, -32768], le) });
        const image = decodeNifti(bytes, 'x.nii');
        assert.equal(image.niftiVersion, 2);
        assert.equal(image.datatype, 'int16');
        assert.deepEqual(image.shape, [1, 2, 3]);
        assert.deepEqual(image.spacing, [3.5, 2.5, 1.5]);
        assert.deepEqual(Array.from(image.data), [1, -2, 3, -4, 5, -32768]);
        assertAffineClose(image.affine, [...srow, [0, 0, 0, 1]], 0);
      }
    });

    it('reads a NIfTI-2 qform and a gzip-compressed NIfTI-2 file', () => {
      const s = Math.SQRT1_2;
      const bytes = craft({ version: 2, dim: [3, 2, 1, 1], datatype: 64, pixdim: [1, 2, 2, 2], qformCode: 1, quatern: [s, 0, 0], qoffset: [1, 2, 3], data: new Uint8Array(new Float64Array([0.25, -1e-300]).buffer) });
      const image = decodeNifti(gzipSync(bytes), 'x.nii.gz');
      assert.deepEqual(Array.from(image.data), [0.25, -1e-300]);
      // 90 degrees about x.
      assertAffineClose(image.affine, [[2, 0, 0, 1], [0, 0, -2, 2], [0, 2, 0, 3], [0, 0, 0, 1]]);
    });

    it('reads a big-endian NIfTI-1 file', () => {
      const values = [258, -3, 32767, -32768];
      const image = decodeNifti(craft({ littleEndian: false, dim: [3, 2, 2, 1], datatype: 4, pixdim: [1, 1, 1, 1], data: int16Bytes(values, false) }), 'x.nii');
      assert.deepEqual(Array.from(image.data), values);
      const f = new Uint8Array(8);
      new DataView(f.buffer).setFloat64(0, -2.75, false);
      assert.deepEqual(Array.from(decodeNifti(craft({ littleEndian: false, dim: [3, 1, 1, 1], datatype: 64, data: f }), 'x.nii').data), [-2.75]);
    });

    it('applies scl_slope/scl_inter into float32, and float64 for float64 files', () => {
      const scaled = decodeNifti(craft({ dim: [3, 3, 1, 1], datatype: 4, slope: 0.5, inter: -10, data: int16Bytes([0, 3, -4]) }), 'x.nii');
      assert.ok(scaled.data instanceof Float32Array);
      assert.equal(scaled.datatype, 'int16');
      assert.deepEqual(Array.from(scaled.data), [-10, -8.5, -12]);
      const wide = decodeNifti(craft({ dim: [3, 1, 1, 1], datatype: 64, slope: 2, inter: 1, data: new Uint8Array(new Float64Array([0.125]).buffer) }), 'x.nii');
      assert.ok(wide.data instanceof Float64Array);
      assert.deepEqual(Array.from(wide.data), [1.25]);
    });

    it('treats scl_slope 0, NaN, or 1 with intercept 0 as no scaling', () => {
      for (const [slope, inter] of [[0, 5], [NaN, 5], [1, 0]]) {
        const image = decodeNifti(craft({ dim: [3, 2, 1, 1], datatype: 4, slope, inter, data: int16Bytes([7, -7]) }), 'x.nii');
        assert.ok(image.data instanceof Int16Array, `slope ${slope}`);
        assert.deepEqual(Array.from(image.data), [7, -7]);
      }
    });

    it('skips header extensions by following vox_offset', () => {
      const bytes = craft({ dim: [3, 2, 1, 1], datatype: 2, voxOffset: 368, data: new Uint8Array([5, 6]) });
      bytes.set([1, 0, 0, 0], 348);
      new DataView(bytes.buffer).setInt32(352, 16, true);
      assert.deepEqual(Array.from(decodeNifti(bytes, 'x.nii').data), [5, 6]);
    });

    it('does not alias the bytes passed to decodeNifti', () => {
      const bytes = craft({ dim: [3, 2, 1, 1], datatype: 2, data: new Uint8Array([5, 6]) });
      const image = decodeNifti(bytes, 'x.nii');
      bytes[352] = 99;
      assert.equal(image.data[0], 5);
    });
  });

  describe('real dataset files', () => {
    it('reads the int16 CT example as shape [30, 101, 122] at 3 mm and writes it back identically', async () => {
      const image = await readNifti(join(DATA, 'ct_example_small.nii.gz'));
      assert.equal(image.datatype, 'int16');
      assert.deepEqual(image.shape, [30, 101, 122]);
      assert.deepEqual(image.spacing, [3, 3, 3]);
      await assertRewritesIdentically(image, join(dir, 'ct.nii.gz'), 'int16');
    });

    for (const c of ['001', '003', '004']) {
      it(`rewrites Hippocampus case ${c} (image and label) identically`, async () => {
        const image = await readNifti(join(DATA, 'Dataset004_Hippocampus/imagesTr', `hippocampus_${c}_0000.nii.gz`));
        const label = await readNifti(join(DATA, 'Dataset004_Hippocampus/labelsTr', `hippocampus_${c}.nii.gz`));
        assert.deepEqual(image.shape, label.shape);
        assert.ok(Array.from(label.data).every((v) => v === 0 || v === 1 || v === 2));
        await assertRewritesIdentically(image, join(dir, `img_${c}.nii.gz`), image.datatype);
        await assertRewritesIdentically(label, join(dir, `seg_${c}.nii`), 'uint8');
      });
    }

    async function assertRewritesIdentically(image: NiftiImage, path: string, datatype: NiftiDatatype): Promise<void> {
      await writeNifti(path, image, { datatype });
      const back = await readNifti(path);
      assert.deepEqual(back.shape, image.shape);
      assert.deepEqual(back.spacing, image.spacing);
      assert.deepEqual(back.affine, image.affine);
      assert.deepEqual(Array.from(back.data), Array.from(image.data));
    }
  });

  describe('refusals', () => {
    const good = (): Uint8Array => craft({ dim: [3, 2, 2, 2], datatype: 4, data: int16Bytes([1, 2, 3, 4, 5, 6, 7, 8]) });

    it('refuses a file truncated in the voxels, and one truncated in the header', async () => {
      expectFormatError(() => decodeNifti(good().subarray(0, 360), 'x.nii'), /truncated: the header declares 368 bytes, the data has 360/);
      expectFormatError(() => decodeNifti(good().subarray(0, 200), 'x.nii'), /too short for a NIfTI header/);
      const path = join(dir, 'cut.nii');
      writeFileSync(path, good().subarray(0, 355));
      await assert.rejects(readNifti(path), (err: unknown) => err instanceof ImageFormatError && err.file === path && /truncated/.test(err.reason));
    });

    it('refuses wrong magic, .hdr/.img headers, random bytes and empty input', () => {
      expectFormatError(() => decodeNifti(craft({ dim: [3, 1, 1, 1], datatype: 2, magic: [0x6e, 0x2b, 0x33, 0], data: new Uint8Array(1) }), 'x.nii'), /no NIfTI magic/);
      expectFormatError(() => decodeNifti(craft({ dim: [3, 1, 1, 1], datatype: 2, magic: [0x6e, 0x69, 0x31, 0], data: new Uint8Array(1) }), 'x.nii'), /\.hdr\/\.img pair/);
      let seed = 12345;
      const random = new Uint8Array(4096).map(() => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 16) & 255);
      expectFormatError(() => decodeNifti(random, 'x.nii'), /no NIfTI magic/);
      expectFormatError(() => decodeNifti(new Uint8Array(0), 'x.nii'), /too short/);
    });

    it('refuses a magic whose sizeof_hdr is wrong', () => {
      const bytes = good();
      new DataView(bytes.buffer).setInt32(0, 1234, true);
      expectFormatError(() => decodeNifti(bytes, 'x.nii'), /unreadable NIfTI-1 header/);
    });

    it('refuses gzip garbage, truncated gzip, and gzip that inflates far past the declared size', () => {
      expectFormatError(() => decodeNifti(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 'x.nii.gz'), /corrupt or truncated gzip/, 'x.nii.gz');
      const zipped = gzipSync(good());
      expectFormatError(() => decodeNifti(zipped.subarray(0, zipped.length - 6), 'x.nii.gz'), /corrupt or truncated gzip/, 'x.nii.gz');
      expectFormatError(() => decodeNifti(zipped.subarray(0, 30), 'x.nii.gz'), /too short/, 'x.nii.gz');
      const bomb = new Uint8Array(352 + 40 * 1024 * 1024);
      bomb.set(good());
      expectFormatError(() => decodeNifti(gzipSync(bomb), 'x.nii.gz'), /inflates to more than the 368 bytes/, 'x.nii.gz');
    });

    it('refuses dim[0] outside 1..7 and zero or negative sizes', () => {
      expectFormatError(() => decodeNifti(craft({ dim: [0, 2, 2, 2], datatype: 2 }), 'x.nii'), /dim\[0\] = 0 is outside 1\.\.7/);
      expectFormatError(() => decodeNifti(craft({ dim: [8, 2, 2, 2], datatype: 2 }), 'x.nii'), /dim\[0\] = 8/);
      expectFormatError(() => decodeNifti(craft({ dim: [3, 2, -2, 2], datatype: 2 }), 'x.nii'), /dim\[2\] = -2 is not a positive size/);
      expectFormatError(() => decodeNifti(craft({ dim: [3, 2, 2, 0], datatype: 2 }), 'x.nii'), /dim\[3\] = 0/);
      expectFormatError(() => decodeNifti(craft({ version: 2, dim: [3, 2, 2, -5], datatype: 2 }), 'x.nii'), /dim\[3\] = -5/);
    });

    it('refuses dims beyond channels (dim5 > 1)', () => {
      expectFormatError(() => decodeNifti(craft({ dim: [5, 2, 2, 2, 1, 3], datatype: 2, data: new Uint8Array(24) }), 'x.nii'), /dim\[5\] = 3/);
    });

    it('refuses volumes over the voxel limit from the header alone, before allocating', async () => {
      // 3 x 3e4^3 float64 voxels (650 TB): allocating them would fail long before any check could run.
      const huge = craft({ version: 2, dim: [4, 30000, 30000, 30000, 3], datatype: 64 });
      assert.throws(() => decodeNifti(huge, 'x.nii'), (err: unknown) => err instanceof VolumeTooLargeError && /81000000000000 voxels/.test(err.message));
      assert.throws(() => decodeNifti(gzipSync(huge), 'x.nii.gz'), VolumeTooLargeError);
      assert.throws(() => decodeNifti(craft({ dim: [3, 32767, 32767, 32767], datatype: 2 }), 'x.nii'), VolumeTooLargeError);
      assert.throws(() => decodeNifti(good(), 'x.nii', { maxVoxels: 7 }), VolumeTooLargeError);
      assert.equal(decodeNifti(good(), 'x.nii', { maxVoxels: 8 }).data.length, 8);
      const path = join(dir, 'huge.nii');
      writeFileSync(path, huge);
      await assert.rejects(readNifti(path), VolumeTooLargeError);
    });

    it('refuses a volume larger than one Node.js buffer even when the voxel limit allows it', () => {
      const bytes = craft({ version: 2, dim: [3, 2000, 2000, 2000], datatype: 4 });
      expectFormatError(() => decodeNifti(bytes, 'x.nii', { maxVoxels: 1e10 }), /one Node\.js buffer/);
    });

    it('refuses dims whose product overflows', () => {
      const big = 2 ** 40;
      expectFormatError(() => decodeNifti(craft({ version: 2, dim: [3, big, big, 2], datatype: 2 }), 'x.nii'), /overflow/);
    });

    it('takes the default limit from NNUNET_MAX_VOXELS', () => {
      const saved = process.env.NNUNET_MAX_VOXELS;
      try {
        process.env.NNUNET_MAX_VOXELS = '4';
        assert.throws(() => decodeNifti(good(), 'x.nii'), VolumeTooLargeError);
        process.env.NNUNET_MAX_VOXELS = 'lots';
        assert.throws(() => decodeNifti(good(), 'x.nii'), /NNUNET_MAX_VOXELS="lots"/);
      } finally {
        if (saved === undefined) delete process.env.NNUNET_MAX_VOXELS;
        else process.env.NNUNET_MAX_VOXELS = saved;
      }
    });

    it('refuses NaN-only data with "all voxels are NaN"', async () => {
      const path = join(dir, 'nan.nii.gz');
      await writeNifti(path, { data: new Float32Array(8).fill(NaN), shape: [2, 2, 2], channels: 1, spacing: [1, 1, 1], affine: IDENTITY }, { datatype: 'float32' });
      await assert.rejects(readNifti(path), (err: unknown) => err instanceof ImageFormatError && err.reason === 'all voxels are NaN' && err.file === path);
      const someNaN = new Float32Array(8).fill(NaN);
      someNaN[3] = 1;
      assert.equal(decodeNifti(encodeNifti({ data: someNaN, shape: [2, 2, 2], channels: 1, spacing: [1, 1, 1], affine: IDENTITY }, { datatype: 'float32' }, false), 'x.nii').data[3], 1);
    });

    it('names unsupported datatypes', () => {
      expectFormatError(() => decodeNifti(craft({ dim: [3, 1, 1, 1], datatype: 128, data: new Uint8Array(3) }), 'x.nii'), /unsupported datatype code 128 \(rgb24\)/);
      expectFormatError(() => decodeNifti(craft({ dim: [3, 8, 1, 1], datatype: 1, data: new Uint8Array(1) }), 'x.nii'), /unsupported datatype code 1 \(binary/);
      expectFormatError(() => decodeNifti(craft({ dim: [3, 1, 1, 1], datatype: 1024, data: new Uint8Array(8) }), 'x.nii'), /code 1024 \(int64\)/);
    });

    it('refuses a valid slope with a non-finite intercept, and a vox_offset inside the header', () => {
      expectFormatError(() => decodeNifti(craft({ dim: [3, 1, 1, 1], datatype: 2, slope: 2, inter: Infinity, data: new Uint8Array(1) }), 'x.nii'), /scl_inter/);
      expectFormatError(() => decodeNifti(craft({ dim: [3, 1, 1, 1], datatype: 2, voxOffset: 100 }), 'x.nii'), /vox_offset 100 lies inside/);
    });

    it('refuses to write what NIfTI-1 cannot hold or what does not match its shape', () => {
      const image = { data: new Uint8Array(10), shape: [1, 1, 40000] as [number, number, number], channels: 1, spacing: [1, 1, 1] as [number, number, number], affine: IDENTITY };
      assert.throws(() => encodeNifti(image, { datatype: 'uint8' }, false), ImageFormatError);
      assert.throws(() => encodeNifti({ ...image, shape: [1, 2, 3] }, { datatype: 'uint8' }, false), /data has 10 values, shape and channels need 6/);
      assert.throws(() => encodeNifti({ ...image, shape: [2, 5, 1], affine: [[1, 0, 0, NaN], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] }, { datatype: 'uint8' }, false), /affine/);
    });
  });

  describe('helpers', () => {
    it('toFloat32 returns float32 data as is and converts the rest', () => {
      const f = new Float32Array([1, 2]);
      assert.equal(toFloat32(f), f);
      assert.deepEqual(Array.from(toFloat32(new Int16Array([-3, 4]))), [-3, 4]);
      assert.ok(toFloat32(new Float64Array([0.5])) instanceof Float32Array);
    });

    it('isAllNaN is true only when every value is NaN', () => {
      assert.equal(isAllNaN(new Float32Array([NaN, NaN])), true);
      assert.equal(isAllNaN(new Float64Array([NaN, 0])), false);
      assert.equal(isAllNaN(new Uint8Array(3)), false);
    });
  });

  /** The first 352 bytes of a (possibly gzipped) file, inflated. */
  function decodeRawHeader(path: string): Uint8Array {
    const bytes = readFileSync(path);
    return new Uint8Array(bytes[0] === 0x1f ? gunzipSync(bytes) : bytes).subarray(0, 352);
  }
});
