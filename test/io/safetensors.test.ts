import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageFormatError } from '../../server/io/errors.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../../server/io/safetensors.js';
import { pythonHas, runPython, tempDir } from '../helpers.js';

const sample = () => ({
  'encoder.w': { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) },
  step: { dtype: 'I64' as const, shape: [], data: BigInt64Array.from([7n]) },
  mask: { dtype: 'U8' as const, shape: [3], data: Uint8Array.from([0, 1, 255]) },
});

describe('safetensors', () => {
  it('lays out the header as the format specifies: u64 length, JSON, 8-byte aligned data', () => {
    const bytes = encodeSafetensors(sample(), { format: 'pt' });
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    assert.deepEqual(header['encoder.w'], { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    assert.deepEqual(header.step, { dtype: 'I64', shape: [], data_offsets: [24, 32] });
    assert.deepEqual(header.__metadata__, { format: 'pt' });
    assert.equal(bytes.length, 8 + n + 35);
    assert.equal(bytes.readFloatLE(8 + n + 20), -6.5);
  });

  it('round-trips through a file, with metadata', async () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'w.safetensors');
      await writeSafetensors(file, sample(), { epoch: '3' });
      const { tensors, metadata } = await readSafetensors(file);
      assert.deepEqual(tensors, sample());
      assert.deepEqual(metadata, { epoch: '3' });
    } finally {
      tmp.cleanup();
    }
  });

  it('is read by an independent Python reader of the format (struct + json + numpy)', function () {
    if (!pythonHas('numpy')) this.skip();
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'w.safetensors');
      writeFileSync(file, encodeSafetensors(sample()));
      const out = runPython(
        `import json, struct, sys, numpy as np
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); d = b[8+n:]
t = {'F32': '<f4', 'I64': '<i8', 'U8': 'u1'}
print(json.dumps({k: np.frombuffer(d[v['data_offsets'][0]:v['data_offsets'][1]], t[v['dtype']]).reshape(v['shape']).tolist() for k, v in h.items()}))`,
        [file],
      );
      assert.deepEqual(JSON.parse(out.toString()), { 'encoder.w': [[1, 2, 3], [4, 5, -6.5]], step: 7, mask: [0, 1, 255] });
    } finally {
      tmp.cleanup();
    }
  });

  it('names the problem in damaged files', () => {
    const good = encodeSafetensors(sample());
    const isFormatError = (re: RegExp) => (e: unknown) => e instanceof ImageFormatError && re.test(e.message);
    assert.throws(() => decodeSafetensors(good.subarray(0, 5), 'a'), isFormatError(/a: file shorter/));
    assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 1), 'b'), isFormatError(/data_offsets outside the file/));
    const bad = Buffer.from(good);
    bad.writeBigUInt64LE(1n << 40n, 0);
    assert.throws(() => decodeSafetensors(bad, 'c'), isFormatError(/header length .* exceeds/));
    assert.throws(() => encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float32Array(3) } }), /needs 2 values, got 3/);
  });
});
