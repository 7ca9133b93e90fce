// Specification of the .npy/.npz codecs: headers byte-identical to np.save, every dtype round trips,
// float16 rounds like numpy, bad files are ImageFormatErrors. Where /usr/bin/python3 has numpy, the
// files are also exchanged with real numpy in both directions.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { ImageFormatError } from '../../server/io/errors.js';
import {
  decodeNpy,
  encodeNpy,
  float16ToFloat32,
  float32ToFloat16,
  readNpy,
  writeNpy,
  type NdArray,
  type NpyDtype,
} from '../../server/io/npy.js';
import { decodeNpz, encodeNpz, readNpz, writeNpz } from '../../server/io/npz.js';

const PYTHON = '/usr/bin/python3';
const hasNumpy = spawnSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

/** Runs a Python script with numpy imported as np and `d` the working folder; returns stdout. */
function python(dir: string, script: string): string {
  return execFileSync(PYTHON, ['-c', `import numpy as np, sys\nd = sys.argv[1]\n${script}`, dir], { encoding: 'utf8' });
}

function sample(dtype: NpyDtype, n: number): NdArray['data'] {
  const values = Array.from({ length: n }, (_, i) => i * 7 - 11);
  switch (dtype) {
    case 'float32': return Float32Array.from(values, (v) => v / 3);
    case 'float16': return float32ToFloat16(Float32Array.from(values, (v) => v / 4));
    case 'float64': return Float64Array.from(values, (v) => v / 3);
    case 'uint8': return Uint8Array.from(values, (v) => v & 0xff);
    case 'int8': return Int8Array.from(values);
    case 'int16': return Int16Array.from(values, (v) => v * 1000);
    case 'int32': return Int32Array.from(values, (v) => v * 100000);
    case 'bool': return Uint8Array.from(values, (v) => (v % 3 === 0 ? 1 : 0));
  }
}

const ALL_DTYPES: NpyDtype[] = ['float32', 'float16', 'float64', 'uint8', 'int8', 'int16', 'int32', 'bool'];

/** A hand-made .npy file, for layouts we never write ourselves. */
function rawNpy(header: string, data: Uint8Array, version = 1): Uint8Array {
  const lengthBytes = version === 1 ? 2 : 4;
  const text = Buffer.from(header + '\n', version === 3 ? 'utf8' : 'latin1');
  const out = Buffer.alloc(8 + lengthBytes + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  if (version === 1) out.writeUInt16LE(text.length, 8);
  else out.writeUInt32LE(text.length, 8);
  out.set(text, 8 + lengthBytes);
  out.set(data, 8 + lengthBytes + text.length);
  return out;
}

function assertFormatError(fn: () => unknown, file: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ImageFormatError, `expected ImageFormatError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.match(err.reason, reason);
    return true;
  });
}

describe('npy', () => {
  describe('header', () => {
    it('matches np.save byte for byte for float32 (2, 3): 118-byte header, data at 128', () => {
      const bytes = encodeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array(6) });
      const expected =
        "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + ' '.repeat(20 + 38) + '\n';
      assert.equal(bytes.subarray(0, 128).toString('latin1'), expected);
      assert.equal(bytes.length, 128 + 6 * 4);
    });

    it('writes a 0-d array as shape () without growth padding', () => {
      const bytes = encodeNpy({ dtype: 'float32', shape: [], data: Float32Array.of(2.5) });
      const expected = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (), }" + ' '.repeat(62) + '\n';
      assert.equal(bytes.subarray(0, 128).toString('latin1'), expected);
      assert.deepEqual(decodeNpy(bytes), { dtype: 'float32', shape: [], data: Float32Array.of(2.5) });
    });

    it('writes a 1-d shape as (5,)', () => {
      const bytes = encodeNpy({ dtype: 'uint8', shape: [5], data: Uint8Array.of(1, 2, 3, 4, 5) });
      const expected = "\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }" + ' '.repeat(20 + 40) + '\n';
      assert.equal(bytes.subarray(0, 128).toString('latin1'), expected);
    });

    it('aligns the data to 64 bytes for every shape', () => {
      for (const shape of [[1], [10, 20], [1234567, 0], [3, 4, 5, 6], [99999, 0, 7]]) {
        const bytes = encodeNpy({ dtype: 'int16', shape, data: new Int16Array(shape.reduce((a, b) => a * b, 1)) });
        const headerLength = bytes.readUInt16LE(8);
        assert.equal((10 + headerLength) % 64, 0, `shape ${shape}`);
        assert.equal(bytes[10 + headerLength - 1], 0x0a);
      }
    });

    it('switches to format 2.0 when the header outgrows 65535 bytes', () => {
      const shape = new Array<number>(25000).fill(1);
      const bytes = encodeNpy({ dtype: 'float32', shape, data: Float32Array.of(7) });
      assert.equal(bytes[6], 2);
      assert.equal((12 + bytes.readUInt32LE(8)) % 64, 0);
      assert.deepEqual(decodeNpy(bytes).shape, shape);
    });
  });

  describe('round trip', () => {
    for (const dtype of ALL_DTYPES) {
      it(`keeps ${dtype} values and shape`, () => {
        const a: NdArray = { dtype, shape: [3, 1, 4], data: sample(dtype, 12) };
        const back = decodeNpy(encodeNpy(a));
        assert.deepEqual(back, a);
      });
    }

    it('keeps empty arrays', () => {
      assert.deepEqual(decodeNpy(encodeNpy({ dtype: 'int32', shape: [0, 3], data: new Int32Array(0) })), {
        dtype: 'int32',
        shape: [0, 3],
        data: new Int32Array(0),
      });
    });

    it('decodes from an unaligned view without sharing memory with it', () => {
      const bytes = encodeNpy({ dtype: 'float64', shape: [2], data: Float64Array.of(1.5, -2) });
      const shifted = new Uint8Array(bytes.length + 3);
      shifted.set(bytes, 3);
      const a = decodeNpy(shifted.subarray(3));
      assert.deepEqual(a.data, Float64Array.of(1.5, -2));
      shifted.fill(0);
      assert.deepEqual(a.data, Float64Array.of(1.5, -2));
    });

    it('writes and reads files', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'npy-'));
      try {
        const a: NdArray = { dtype: 'float16', shape: [2, 2], data: sample('float16', 4) };
        await writeNpy(join(dir, 'sub', 'a.npy'), a);
        assert.deepEqual(await readNpy(join(dir, 'sub', 'a.npy')), a);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('refuses data that does not fit the shape or dtype when encoding', () => {
      assert.throws(() => encodeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array(3) }), RangeError);
      assert.throws(() => encodeNpy({ dtype: 'float32', shape: [2], data: new Float64Array(2) }), TypeError);
    });
  });

  describe('reading other layouts', () => {
    it('byte-swaps big-endian data', () => {
      const data = Buffer.alloc(8);
      data.writeInt32BE(-123456, 0);
      data.writeInt32BE(7, 4);
      const a = decodeNpy(rawNpy("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", data));
      assert.deepEqual(a, { dtype: 'int32', shape: [2], data: Int32Array.of(-123456, 7) });
    });

    it('transposes Fortran-order data into C order', () => {
      // C-order [[0, 1, 2], [3, 4, 5]] stored column by column.
      const data = new Uint8Array(Int16Array.of(0, 3, 1, 4, 2, 5).buffer);
      const a = decodeNpy(rawNpy("{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }", data));
      assert.deepEqual(a, { dtype: 'int16', shape: [2, 3], data: Int16Array.of(0, 1, 2, 3, 4, 5) });
      const f3 = Float32Array.from({ length: 24 }, (_, i) => i);
      const b = decodeNpy(rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", new Uint8Array(f3.buffer)));
      // C index (i, j, k) holds Fortran offset i + 2j + 6k.
      assert.equal(b.data[1 * 12 + 2 * 4 + 3], 1 + 2 * 2 + 6 * 3);
    });

    it('reads format versions 2.0 and 3.0', () => {
      const data = new Uint8Array(Float32Array.of(1, 2).buffer);
      for (const version of [2, 3]) {
        const a = decodeNpy(rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data, version));
        assert.deepEqual(a.data, Float32Array.of(1, 2));
      }
    });

    it('reads Python 2 long integers and double-quoted keys', () => {
      const a = decodeNpy(rawNpy('{"descr": "|u1", "fortran_order": False, "shape": (2L, 1L)}', Uint8Array.of(4, 5)));
      assert.deepEqual(a.shape, [2, 1]);
    });
  });

  describe('bad files', () => {
    const good = encodeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array(6) });

    it('names a truncated file', () => {
      assertFormatError(() => decodeNpy(good.subarray(0, 5), 'a.npy'), 'a.npy', /truncated/);
      assertFormatError(() => decodeNpy(good.subarray(0, 60), 'a.npy'), 'a.npy', /truncated.*header/);
      assertFormatError(() => decodeNpy(good.subarray(0, good.length - 1), 'a.npy'), 'a.npy', /truncated npy data.*needs 24 bytes, file has 23/);
    });

    it('names a bad magic string', () => {
      const bad = Buffer.from(good);
      bad[1] = 0x58;
      assertFormatError(() => decodeNpy(bad, 'b.npy'), 'b.npy', /bad magic/);
    });

    it('names a header that is not a dict', () => {
      assertFormatError(() => decodeNpy(rawNpy('[1, 2, 3]', new Uint8Array(0)), 'c.npy'), 'c.npy', /not a Python dict/);
      assertFormatError(() => decodeNpy(rawNpy("{'descr': '<f4', 'shape': (2,", new Uint8Array(0)), 'c.npy'), 'c.npy', /not a Python dict/);
      assertFormatError(() => decodeNpy(rawNpy("{'descr': '<f4', 'shape': (1,)}", new Uint8Array(4)), 'c.npy'), 'c.npy', /fortran_order/);
      assertFormatError(
        () => decodeNpy(rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", new Uint8Array(4)), 'c.npy'),
        'c.npy',
        /shape/,
      );
    });

    it('names data whose length does not match the shape', () => {
      const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
      assertFormatError(() => decodeNpy(rawNpy(header, new Uint8Array(28)), 'd.npy'), 'd.npy', /longer than its shape.*\(2, 3\)/);
    });

    it('names an unsupported dtype', () => {
      const header = "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }";
      assertFormatError(() => decodeNpy(rawNpy(header, new Uint8Array(8)), 'e.npy'), 'e.npy', /unsupported npy dtype '<i8'/);
      const structured = "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }";
      assertFormatError(() => decodeNpy(rawNpy(structured, new Uint8Array(4)), 'e.npy'), 'e.npy', /structured/);
    });

    it('names an unknown format version', () => {
      const bad = Buffer.from(good);
      bad[6] = 9;
      assertFormatError(() => decodeNpy(bad, 'f.npy'), 'f.npy', /version 9\.0/);
    });
  });
});

describe('float16', () => {
  const half = (...values: number[]): number[] => Array.from(float32ToFloat16(Float32Array.from(values)));

  it('keeps signed zeros and the largest finite half', () => {
    assert.deepEqual(half(0, -0, 65504, -65504), [0x0000, 0x8000, 0x7bff, 0xfbff]);
  });

  it('overflows to infinity past 65504 (the tie at 65520 rounds to even, which is inf)', () => {
    assert.deepEqual(half(65519, 65520, 1e6, Infinity, -Infinity), [0x7bff, 0x7c00, 0x7c00, 0x7c00, 0xfc00]);
  });

  it('keeps NaN a NaN', () => {
    const [h] = half(NaN);
    assert.equal(h & 0x7c00, 0x7c00);
    assert.notEqual(h & 0x03ff, 0);
    assert.ok(Number.isNaN(float16ToFloat32(Uint16Array.of(h))[0]));
  });

  it('rounds into subnormals and underflows to zero', () => {
    // 2^-24 is the smallest subnormal; 1e-8 is under half of it and 1e-5 is 167.77 of it.
    assert.deepEqual(half(2 ** -24, 1e-8, -1e-8, 1e-5, 2 ** -14, 2 ** -14 - 2 ** -24), [0x0001, 0x0000, 0x8000, 0x00a8, 0x0400, 0x03ff]);
  });

  it('rounds ties to even', () => {
    // 1 + 2^-11 lies halfway between 1 and the next half; 2049 halfway between 2048 and 2050.
    assert.deepEqual(half(1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051), [0x3c00, 0x3c02, 0x6800, 0x6802]);
    // Subnormal ties: 2^-25 → 0, 3 × 2^-25 → 2 × 2^-24.
    assert.deepEqual(half(2 ** -25, 3 * 2 ** -25, 2 ** -25 + 2 ** -40), [0x0000, 0x0002, 0x0001]);
  });

  it('round-trips every one of the 65536 half bit patterns exactly', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    assert.deepEqual(float32ToFloat16(float16ToFloat32(all)), all);
  });

  it('widens halves to their exact float32 values', () => {
    assert.deepEqual(Array.from(float16ToFloat32(Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000))), [1, -2, 2 ** -24, 65504, -0]);
  });
});

describe('npz', () => {
  const arrays = (): Record<string, NdArray> => ({
    probabilities: { dtype: 'float16', shape: [2, 3, 4], data: sample('float16', 24) },
    seg: { dtype: 'uint8', shape: [3, 4], data: sample('uint8', 12) },
  });

  for (const compress of [false, true]) {
    it(`round-trips ${compress ? 'deflated (savez_compressed)' : 'stored (savez)'} members`, () => {
      const bytes = encodeNpz(arrays(), { compress });
      assert.equal(bytes.readUInt16LE(8), compress ? 8 : 0, 'zip compression method');
      assert.deepEqual(decodeNpz(bytes), arrays());
    });
  }

  it('gives the same bytes for the same arrays', () => {
    assert.deepEqual(encodeNpz(arrays(), { compress: true }), encodeNpz(arrays(), { compress: true }));
  });

  it('writes and reads files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npz-'));
    try {
      await writeNpz(join(dir, 'case.npz'), arrays(), { compress: true });
      assert.deepEqual(await readNpz(join(dir, 'case.npz')), arrays());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names a corrupt archive', () => {
    const bytes = encodeNpz(arrays());
    assertFormatError(() => decodeNpz(bytes.subarray(0, bytes.length - 30), 'p.npz'), 'p.npz', /not a readable npz/);
    assertFormatError(() => decodeNpz(Buffer.from('not a zip at all'), 'p.npz'), 'p.npz', /not a readable npz/);
  });

  it('names a stored member whose bytes were changed (CRC mismatch)', () => {
    const bytes = Buffer.from(encodeNpz(arrays()));
    bytes[200] ^= 0x01; // inside the first member's data
    assertFormatError(() => decodeNpz(bytes, 'q.npz'), 'q.npz', /probabilities\.npy.*CRC/);
  });

  it('names a member that is not an npy file', () => {
    const zip = zipSync({ 'x.npy': new TextEncoder().encode('hello, world') }, { level: 0 });
    assertFormatError(() => decodeNpz(zip, 'r.npz'), 'r.npz', /member 'x\.npy': not an npy file: bad magic/);
  });
});

describe('npy and npz with numpy', function () {
  let dir = '';
  before(async function () {
    if (!hasNumpy) {
      console.warn(`      skipped: numpy is not importable by ${PYTHON} (apt-get install python3-numpy)`);
      this.skip();
    }
    dir = await mkdtemp(join(tmpdir(), 'npy-numpy-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('numpy loads our .npz probabilities and .npy arrays of every dtype', async () => {
    const probabilities: NdArray = { dtype: 'float32', shape: [2, 3, 4, 5], data: Float32Array.from({ length: 120 }, (_, i) => i / 120) };
    await writeNpz(join(dir, 'ours.npz'), { probabilities }, { compress: true });
    await writeNpz(join(dir, 'ours_stored.npz'), { probabilities });
    for (const dtype of ALL_DTYPES) await writeNpy(join(dir, `ours_${dtype}.npy`), { dtype, shape: [3, 4], data: sample(dtype, 12) });
    const out = python(
      dir,
      `
for name in ('ours.npz', 'ours_stored.npz'):
    p = np.load(d + '/' + name)['probabilities']
    assert p.dtype == np.float32 and p.shape == (2, 3, 4, 5), (p.dtype, p.shape)
    assert np.array_equal(p, (np.arange(120, dtype=np.float32) / np.float32(120)).reshape(2, 3, 4, 5))
v = np.arange(12) * 7 - 11
expect = {'float32': (v / 3).astype(np.float32), 'float16': (v / 4).astype(np.float16), 'float64': v / 3,
          'uint8': (v & 255).astype(np.uint8), 'int8': v.astype(np.int8), 'int16': (v * 1000).astype(np.int16),
          'int32': (v * 100000).astype(np.int32), 'bool': v % 3 == 0}
for dtype, e in expect.items():
    a = np.load(d + '/ours_' + dtype + '.npy')
    assert a.dtype == e.dtype and a.shape == (3, 4), (dtype, a.dtype, a.shape)
    assert np.array_equal(a, e.reshape(3, 4)), dtype
print('ok')
`,
    );
    assert.equal(out.trim(), 'ok');
  });

  it('we decode what numpy writes, and re-encode it byte for byte', async () => {
    python(
      dir,
      `
v = np.arange(60) * 7 - 11
arrays = {'float32': (v / 3).astype(np.float32), 'float16': (v / 4).astype(np.float16), 'float64': v / 3,
          'uint8': (v & 255).astype(np.uint8), 'int8': v.astype(np.int8), 'int16': (v * 1000).astype(np.int16),
          'int32': (v * 100000).astype(np.int32), 'bool': v % 3 == 0}
for dtype, a in arrays.items():
    for shape in [(60,), (3, 4, 5), (1, 60), (60, 1, 1, 1)]:
        np.save(d + '/np_%s_%s.npy' % (dtype, 'x'.join(map(str, shape))), a.reshape(shape))
np.save(d + '/np_scalar.npy', np.float32(3.5))
np.save(d + '/np_big.npy', (v / 3).astype('>f8').reshape(3, 4, 5))
np.save(d + '/np_fortran.npy', np.asfortranarray((v / 3).astype(np.float32).reshape(3, 4, 5)))
for version in [(2, 0), (3, 0)]:
    with open(d + '/np_v%d.npy' % version[0], 'wb') as f:
        np.lib.format.write_array(f, arrays['int16'].reshape(3, 20), version=version)
np.savez(d + '/np_stored.npz', probabilities=arrays['float16'].reshape(3, 4, 5), seg=arrays['uint8'])
np.savez_compressed(d + '/np_deflated.npz', probabilities=arrays['float32'].reshape(3, 4, 5), seg=arrays['uint8'])
`,
    );
    const v = Array.from({ length: 60 }, (_, i) => i * 7 - 11);
    for (const dtype of ALL_DTYPES) {
      for (const shape of [[60], [3, 4, 5], [1, 60], [60, 1, 1, 1]]) {
        const bytes = await readFile(join(dir, `np_${dtype}_${shape.join('x')}.npy`));
        const a = decodeNpy(bytes);
        assert.deepEqual(a, { dtype, shape, data: sample(dtype, 60) }, `${dtype} ${shape}`);
        assert.ok(encodeNpy(a).equals(bytes), `np.save bytes of ${dtype} ${shape}`);
      }
    }
    const scalar = await readFile(join(dir, 'np_scalar.npy'));
    assert.ok(encodeNpy(decodeNpy(scalar)).equals(scalar));
    assert.deepEqual((await readNpy(join(dir, 'np_big.npy'))).data, Float64Array.from(v, (x) => x / 3));
    assert.deepEqual(await readNpy(join(dir, 'np_fortran.npy')), { dtype: 'float32', shape: [3, 4, 5], data: Float32Array.from(v, (x) => x / 3) });
    for (const version of [2, 3]) {
      assert.deepEqual((await readNpy(join(dir, `np_v${version}.npy`))).data, Int16Array.from(v, (x) => x * 1000));
    }
    const stored = await readNpz(join(dir, 'np_stored.npz'));
    assert.deepEqual(Object.keys(stored).sort(), ['probabilities', 'seg']);
    assert.deepEqual(stored.probabilities, { dtype: 'float16', shape: [3, 4, 5], data: sample('float16', 60) });
    const deflated = await readNpz(join(dir, 'np_deflated.npz'));
    assert.deepEqual(deflated.probabilities, { dtype: 'float32', shape: [3, 4, 5], data: sample('float32', 60) });
    assert.deepEqual(deflated.seg, { dtype: 'uint8', shape: [60], data: sample('uint8', 60) });
  });

  it('float32ToFloat16 agrees with numpy astype(float16) bit for bit', async () => {
    // Random bit patterns cover every exponent; the grid around the half range stresses rounding.
    let state = 12345;
    const next = (): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
    const bits = new Uint32Array(400000);
    for (let i = 0; i < 200000; i++) bits[i] = next();
    for (let i = 0; i < 200000; i++) bits[200000 + i] = (0x33000000 + i * 0x1ff + (next() & 0x1fff)) >>> 0;
    const values = new Float32Array(bits.buffer);
    await writeFile(join(dir, 'f32.npy'), encodeNpy({ dtype: 'float32', shape: [values.length], data: values }));
    python(dir, `with np.errstate(all='ignore'): np.save(d + '/f16.npy', np.load(d + '/f32.npy').astype(np.float16))`);
    const theirs = (await readNpy(join(dir, 'f16.npy'))).data as Uint16Array;
    const ours = float32ToFloat16(values);
    for (let i = 0; i < ours.length; i++) {
      const nan = Number.isNaN(values[i]);
      if (nan) assert.ok((ours[i] & 0x7c00) === 0x7c00 && (ours[i] & 0x3ff) !== 0 && (theirs[i] & 0x7c00) === 0x7c00 && (theirs[i] & 0x3ff) !== 0);
      else if (ours[i] !== theirs[i]) assert.fail(`float32 bits 0x${bits[i].toString(16)}: ours 0x${ours[i].toString(16)}, numpy 0x${theirs[i].toString(16)}`);
    }
  });
});
