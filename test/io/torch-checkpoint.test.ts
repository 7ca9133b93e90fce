import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { ImageFormatError } from '../../server/io/errors.js';
import { PickleError, PyObject, unpickle } from '../../server/io/pickle.js';
import { decodeTorchCheckpoint, TorchTensor } from '../../server/io/torch-checkpoint.js';
import { pythonHas, runPython, tempDir } from '../helpers.js';
import { fixtureModelMember } from '../fixtures/nnunet-model.js';

/** The real nnU-Net v2 checkpoint from the fixture model zip. */
function fixtureCheckpoint(): Uint8Array {
  return fixtureModelMember('checkpoint_final.pth');
}

describe('pickle reader', () => {
  it('reads what Python pickles with protocols 2 to 5', function () {
    if (!pythonHas('pickle')) this.skip();
    for (const protocol of [2, 3, 4, 5]) {
      const bytes = runPython(
        `import pickle, sys, collections
v = {'a': [1, -2, 3.5, None, True, False], 'big': 2**40, 'neg': -2**40, 's': 'héllo', 'b': b'\\x00\\xff',
     't': (1, (2, 3), ()), 5: 'int key', 'obj': __import__('fractions').Fraction(1, 3), 'nested': collections.OrderedDict([('x', 1), ('y', [])]), 'set': {7}}
sys.stdout.buffer.write(pickle.dumps(v, protocol=${protocol}))`,
      );
      const v = unpickle(bytes) as Map<unknown, unknown>;
      assert.deepEqual(v.get('a'), [1, -2, 3.5, null, true, false], `protocol ${protocol}`);
      assert.equal(v.get('big'), 2 ** 40);
      assert.equal(v.get('neg'), -(2 ** 40));
      assert.equal(v.get('s'), 'héllo');
      assert.equal(v.get(5), 'int key');
      assert.deepEqual(v.get('t'), [1, [2, 3], []]);
      assert.deepEqual(v.get('set'), new Set([7]));
      // an arbitrary class is never run: it stays an inert record
      const obj = v.get('obj');
      assert.ok(obj instanceof PyObject && obj.callee.qualifiedName === 'fractions.Fraction', String(obj));
      assert.deepEqual(v.get('b'), Uint8Array.from([0, 255]));
      assert.deepEqual(v.get('nested'), new Map<unknown, unknown>([['x', 1], ['y', []]]));
    }
  });

  it('refuses truncated and unknown streams with a PickleError instead of crashing', () => {
    assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x4a, 0x01])), PickleError);
    assert.throws(() => unpickle(Uint8Array.from([0xff])), /unsupported pickle opcode 0xff/);
    assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x2e])), /stack underflow/);
  });
});

describe('PyTorch checkpoint reader', () => {
  it("reads the real nnU-Net v2 checkpoint: weights, trainer, configuration, mirroring axes", () => {
    const ck = decodeTorchCheckpoint(fixtureCheckpoint(), 'checkpoint_final.pth') as Map<string, unknown>;
    assert.deepEqual([...ck.keys()], [
      'network_weights', 'optimizer_state', 'grad_scaler_state', 'logging', '_best_ema', 'current_epoch', 'init_args', 'trainer_name', 'inference_allowed_mirroring_axes',
    ]);
    assert.equal(ck.get('trainer_name'), 'nnUNetTrainer_RefSmall');
    const initArgs = ck.get('init_args') as Map<string, unknown>;
    assert.equal(initArgs.get('configuration'), '3d_fullres');
    assert.equal(initArgs.get('device'), 'cpu');
    assert.deepEqual(ck.get('inference_allowed_mirroring_axes'), [0, 1, 2]);
    assert.equal(typeof ck.get('_best_ema'), 'number');
    const weights = ck.get('network_weights') as Map<string, TorchTensor>;
    const first = weights.get('encoder.stages.0.0.convs.0.conv.weight')!;
    assert.deepEqual(first.shape, [8, 1, 3, 3, 3]);
    assert.equal(first.data.length, 8 * 27);
    assert.deepEqual(weights.get('decoder.seg_layers.2.weight')!.shape, [3, 8, 1, 1, 1]);
    assert.deepEqual(weights.get('decoder.transpconvs.0.weight')!.shape, [64, 32, 2, 2, 2]);
    // nnU-Net stores each conv twice (attribute and all_modules): the copies must be equal
    assert.deepEqual(weights.get('encoder.stages.1.0.convs.1.all_modules.0.weight')!.data, weights.get('encoder.stages.1.0.convs.1.conv.weight')!.data);
    const momentum = ((ck.get('optimizer_state') as Map<string, unknown>).get('state') as Map<number, Map<string, TorchTensor>>).get(0)!.get('momentum_buffer')!;
    assert.deepEqual(momentum.shape, first.shape);
  });

  it('gives every tensor the values PyTorch loads', function () {
    if (!pythonHas('torch')) {
      console.warn('      skipped: PyTorch is not importable by /usr/bin/python3 (apt-get install python3-torch)');
      this.skip();
    }
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'checkpoint_final.pth');
      const bytes = fixtureCheckpoint();
      writeFileSync(file, bytes);
      const ref = JSON.parse(
        runPython(
          `import torch, json, sys
ck = torch.load(sys.argv[1], map_location='cpu', weights_only=False)
w = ck['network_weights']
print(json.dumps({k: [list(v.shape), float(v.double().sum()), float(v.double().abs().max()), v.flatten()[:5].tolist()] for k, v in w.items()}))`,
          [file],
        ).toString(),
      ) as Record<string, [number[], number, number, number[]]>;
      const weights = (decodeTorchCheckpoint(bytes, file) as Map<string, unknown>).get('network_weights') as Map<string, TorchTensor>;
      assert.deepEqual([...weights.keys()], Object.keys(ref));
      for (const [key, [shape, sum, absMax, head]] of Object.entries(ref)) {
        const t = weights.get(key)!;
        assert.deepEqual(t.shape, shape, key);
        const values = t.toFloat32();
        let s = 0;
        let m = 0;
        for (const v of values) {
          s += v;
          m = Math.max(m, Math.abs(v));
        }
        assert.ok(Math.abs(s - sum) <= 1e-6 * Math.max(1, Math.abs(sum)), `${key}: sum ${s} vs ${sum}`);
        assert.equal(m, absMax, key);
        assert.deepEqual([...values.slice(0, 5)], head, key);
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('names the file and the reason for a non-checkpoint or a damaged one', () => {
    assert.throws(() => decodeTorchCheckpoint(Uint8Array.from([1, 2, 3]), 'x.pth'), (e: unknown) => e instanceof ImageFormatError && /x\.pth: not a PyTorch zip/.test(e.message));
    assert.throws(() => decodeTorchCheckpoint(zipSync({ 'a/other.txt': new Uint8Array(1) }), 'y.pth'), /no <name>\/data\.pkl/);
    const entries = unzipSync(fixtureCheckpoint());
    const withoutStorage = Object.fromEntries(Object.entries(entries).filter(([name]) => !name.endsWith('/data/0')));
    assert.throws(() => decodeTorchCheckpoint(zipSync(withoutStorage), 'z.pth'), /z\.pth: storage 0 is missing/);
    const pkl = Object.keys(entries).find((n) => n.endsWith('data.pkl'))!;
    const truncated = { ...entries, [pkl]: entries[pkl].slice(0, 1000) };
    assert.throws(() => decodeTorchCheckpoint(zipSync(truncated), 'w.pth'), /w\.pth: cannot read the pickled checkpoint: truncated/);
  });
});

