// Specification of the checkpoint pair (<name>.safetensors + <name>.json): exact round trip of
// weights, momentum buffers and trainer state (NaN/Infinity included), refusal of a mixed or damaged
// pair with the file named, and that PyTorch reads our weights as an ordinary state dict.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  arrayToTensor,
  loadCheckpoint,
  restoreSgd,
  saveCheckpoint,
  sgdState,
  tensorToArray,
  type ArrayTensor,
  type Checkpoint,
  type TrainerState,
} from '../../server/engine/checkpoint.js';
import { SGD, liveTensors, tensor, tidy, torchAvailable } from '../../server/engine/torch.js';
import { pythonHas, runPython, tempDir } from '../helpers.js';

const arr = (shape: number[], values: number[]): ArrayTensor => ({ shape, data: Float32Array.from(values) });

function trainerState(overrides: Partial<TrainerState> = {}): TrainerState {
  return {
    current_epoch: 3,
    logging: {
      mean_fg_dice: [0.1, 0.25, NaN],
      ema_fg_dice: [0.1, 0.115, 0.115],
      dice_per_class_or_region: [[0.2, NaN], [0.3, 0.2], [NaN, NaN]],
      train_losses: [0.7997, -0.1, Infinity],
      val_losses: [0.6296, -0.2, -Infinity],
      lrs: [0.01, 0.00694, 0.00372],
      epoch_start_timestamps: [1700000000.125, 1700000023.5, 1700000047],
      epoch_end_timestamps: [1700000023.25, 1700000046.75, 1700000070.5],
    },
    _best_ema: 0.115,
    configuration: '3d_fullres',
    fold: 0,
    plans_name: 'nnUNetPlans',
    trainer_name: 'nnUNetTrainer',
    inference_allowed_mirroring_axes: [0, 1, 2],
    grad_scaler_state: null,
    ...overrides,
  };
}

// A Linear(3, 2) state dict: weight [[1, 2, 3], [4, 5, 6]], bias [0.5, -0.5].
const linearWeights = (): Map<string, ArrayTensor> =>
  new Map([
    ['weight', arr([2, 3], [1, 2, 3, 4, 5, 6])],
    ['bias', arr([2], [0.5, -0.5])],
  ]);

const sample = (): Checkpoint => ({
  weights: linearWeights(),
  optimizerState: {
    hyperParameters: { lr: 0.00372, momentum: 0.99, dampening: 0, weight_decay: 3e-5, nesterov: true, initial_lr: 0.01 },
    momentumBuffers: { weight: arr([2, 3], [0.1, -0.2, 0.3, -0.4, 0.5, -0.6]) }, // bias never stepped
  },
  trainerState: trainerState(),
});

describe('engine/checkpoint', () => {
  let dir = '';
  let cleanup = (): void => {};
  beforeEach(() => {
    ({ dir, cleanup } = tempDir('nnunet-ckpt-'));
  });
  afterEach(() => cleanup());

  it('round-trips weights, momentum buffers and trainer state exactly, NaN and ±Infinity included', async () => {
    const path = join(dir, 'fold_0', 'checkpoint_latest');
    await saveCheckpoint(path, sample());
    assert.deepEqual(readdirSync(join(dir, 'fold_0')).sort(), ['checkpoint_latest.json', 'checkpoint_latest.safetensors'], 'no temporary file left');

    const loaded = await loadCheckpoint(path);
    assert.deepEqual([...loaded.weights.keys()], ['weight', 'bias'], 'saved order kept');
    assert.deepEqual(loaded.weights, linearWeights());
    assert.deepEqual(loaded.optimizerState, {
      hyperParameters: sample().optimizerState!.hyperParameters,
      momentumBuffers: new Map([['weight', arr([2, 3], [0.1, -0.2, 0.3, -0.4, 0.5, -0.6])]]),
    });
    assert.deepEqual(loaded.trainerState, trainerState()); // deepStrictEqual: NaN equals NaN

    const json = JSON.parse(readFileSync(`${path}.json`, 'utf8'));
    assert.equal(json.format_version, CHECKPOINT_FORMAT_VERSION);
    assert.equal(json.weights_file, 'checkpoint_latest.safetensors');
    assert.deepEqual(json.logging.mean_fg_dice, [0.1, 0.25, 'NaN']);
    assert.deepEqual(json.logging.train_losses, [0.7997, -0.1, 'Infinity']);
  });

  it('saves without optimiser state, with fold "all" and no best EMA yet', async () => {
    const path = join(dir, 'checkpoint_final');
    await saveCheckpoint(path, { weights: { w: arr([1], [2]) }, trainerState: trainerState({ fold: 'all', _best_ema: null, current_epoch: 1000 }) });
    const loaded = await loadCheckpoint(path);
    assert.equal(loaded.optimizerState, null);
    assert.equal(loaded.trainerState.fold, 'all');
    assert.equal(loaded.trainerState._best_ema, null);
    assert.equal(loaded.trainerState.current_epoch, 1000);
  });

  it('refuses new weights beside a stale JSON (a crash between the two renames) and names the file', async () => {
    const path = join(dir, 'checkpoint_latest');
    const other = join(dir, 'newer');
    await saveCheckpoint(path, sample());
    const newer = sample();
    newer.weights = new Map([['weight', arr([2, 3], [9, 9, 9, 9, 9, 9])], ['bias', arr([2], [0, 0])]]);
    newer.trainerState = trainerState({ current_epoch: 4 });
    await saveCheckpoint(other, newer);
    // The save renames weights first, then the JSON: the state after a crash in between.
    copyFileSync(`${other}.safetensors`, `${path}.safetensors`);
    await assert.rejects(loadCheckpoint(path), (err: unknown) => {
      assert.ok(err instanceof CheckpointError);
      assert.equal(err.file, `${path}.safetensors`);
      assert.match(err.message, /sha256 .* does not match .*checkpoint_latest\.json.*inconsistent/);
      return true;
    });
  });

  it('ignores temporary files of a save that died before renaming: the previous pair still loads', async () => {
    const path = join(dir, 'checkpoint_best');
    await saveCheckpoint(path, sample());
    writeFileSync(join(dir, '.checkpoint_best.safetensors.123.deadbeef.tmp'), 'partial');
    writeFileSync(join(dir, '.checkpoint_best.json.123.deadbeef.tmp'), '{"format_');
    assert.equal((await loadCheckpoint(path)).trainerState.current_epoch, 3);
  });

  it('names the missing file', async () => {
    const path = join(dir, 'checkpoint_final');
    await assert.rejects(loadCheckpoint(path), { name: 'CheckpointError', message: `${path}.json: checkpoint state file is missing` });
    await saveCheckpoint(path, sample());
    rmSync(`${path}.safetensors`);
    await assert.rejects(loadCheckpoint(path), { message: `${path}.safetensors: checkpoint weights file is missing` });
  });

  it('refuses a format version newer than this code, and a damaged JSON', async () => {
    const path = join(dir, 'checkpoint_final');
    await saveCheckpoint(path, sample());
    const json = JSON.parse(readFileSync(`${path}.json`, 'utf8'));
    writeFileSync(`${path}.json`, JSON.stringify({ ...json, format_version: CHECKPOINT_FORMAT_VERSION + 1 }));
    await assert.rejects(loadCheckpoint(path), new RegExp(`checkpoint_final\\.json: checkpoint format version ${CHECKPOINT_FORMAT_VERSION + 1} is newer`));
    writeFileSync(`${path}.json`, JSON.stringify({ ...json, current_epoch: -1 }));
    await assert.rejects(loadCheckpoint(path), /current_epoch must be a non-negative integer/);
    writeFileSync(`${path}.json`, '{"format_version": 1, "weights');
    await assert.rejects(loadCheckpoint(path), /checkpoint_final\.json: not valid JSON/);
  });

  it('refuses bad input before writing anything', async () => {
    const path = join(dir, 'bad');
    await assert.rejects(saveCheckpoint(path, { ...sample(), weights: { w: arr([2, 2], [1, 2, 3]) } }), /tensor w: shape \[2,2\] needs 4 values, got 3/);
    await assert.rejects(saveCheckpoint(path, { ...sample(), weights: { 'optimizer.momentum_buffer.x': arr([1], [1]) } }), /reserved prefix/);
    assert.deepEqual(readdirSync(dir), []);
  });

  (pythonHas('torch') ? it : it.skip)('PyTorch reads the weights with a 10-line safetensors reader and loads them into nn.Linear', async () => {
    const path = join(dir, 'checkpoint_final');
    await saveCheckpoint(path, sample());
    const out = runPython(
      String.raw`
import json, struct, sys, torch
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop('__metadata__', {})
sd = {}
for name, e in header.items():
    a, b = e['data_offsets']
    sd[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(e['shape'])
net = torch.nn.Linear(3, 2)
net.load_state_dict({k: v for k, v in sd.items() if not k.startswith('optimizer.')})
print(json.dumps({'meta': meta, 'names': list(sd), 'y': net(torch.ones(3)).tolist(),
                  'momentum': sd['optimizer.momentum_buffer.weight'].flatten().tolist()}))
`,
      [`${path}.safetensors`],
    );
    const r = JSON.parse(out.toString());
    assert.equal(r.meta.format, 'pt');
    assert.deepEqual(r.names, ['weight', 'bias', 'optimizer.momentum_buffer.weight']);
    // W·[1, 1, 1] + b = [1 + 2 + 3 + 0.5, 4 + 5 + 6 − 0.5]
    assert.deepEqual(r.y, [6.5, 14.5]);
    assert.deepEqual(r.momentum, Array.from(Float32Array.from([0.1, -0.2, 0.3, -0.4, 0.5, -0.6])));
  });

  (torchAvailable() ? describe : describe.skip)('with libtorch tensors', () => {
    it('tensorToArray and arrayToTensor copy values and shape', () => {
      const live = liveTensors();
      tidy(() => {
        const a = tensorToArray(tensor(new Float64Array([1.5, -2, 3, 4]), [2, 2]));
        assert.deepEqual(a, arr([2, 2], [1.5, -2, 3, 4]));
        const t = arrayToTensor(a);
        assert.deepEqual(t.shape, [2, 2]);
        assert.equal(t.dtype, 'float32');
        assert.deepEqual(Array.from(t.toFloat32Array()), [1.5, -2, 3, 4]);
      });
      assert.equal(liveTensors(), live);
    });

    it('an SGD restored from a saved checkpoint takes the same next step as the original', async () => {
      const live = liveTensors();
      const names = ['w', 'b'];
      const make = () => [tensor([1, 2, 3], [3]).requiresGrad_(), tensor([0.5], [1]).requiresGrad_()];
      const gradStep = (sgd: SGD) =>
        tidy(() => {
          sgd.params[0].grad = tensor([0.1, -0.2, 0.3]);
          sgd.params[1].grad = null; // b is never stepped: it has no momentum buffer
          sgd.step();
        });
      const opts = { lr: 0.01, momentum: 0.99, weightDecay: 3e-5, nesterov: true };
      const a = new SGD(make(), opts);
      gradStep(a);
      const path = join(dir, 'ckpt');
      await saveCheckpoint(path, {
        weights: new Map(a.params.map((p, i) => [names[i], tensorToArray(p)])),
        optimizerState: sgdState(a, names, 0.01),
        trainerState: trainerState(),
      });
      const loaded = await loadCheckpoint(path);
      assert.deepEqual([...loaded.optimizerState!.momentumBuffers.keys()], ['w']);
      const b = new SGD(
        names.map((n) => arrayToTensor(loaded.weights.get(n)!).requiresGrad_()),
        opts,
      );
      restoreSgd(b, names, loaded.optimizerState!);
      assert.equal(b.momentumBuffers[1], null);
      gradStep(a);
      gradStep(b);
      assert.deepEqual(Array.from(b.params[0].toFloat32Array()), Array.from(a.params[0].toFloat32Array()));
      assert.throws(() => restoreSgd(b, names, { ...loaded.optimizerState!, momentumBuffers: { w: arr([2], [1, 2]) } }), /shape \[2\], parameter has \[3\]/);
      for (const s of [a, b]) {
        s.dispose();
        for (const p of s.params) p.dispose();
      }
      assert.equal(liveTensors(), live);
    });
  });
});
