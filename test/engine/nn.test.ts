// Specification of the module system: registration order and dotted keys as torch.nn, aliases
// (nnU-Net's duplicate keys), strict/non-strict loading with a report naming each key, train/eval,
// parameters that work without libtorch, He initialisation, and the layers' libtorch semantics.
import assert from 'node:assert/strict';
import { F, noGrad, tensor, tidy, torchAvailable } from '../../server/engine/torch.js';
import { Conv, ConvTranspose, Dropout, InstanceNorm, Layer, LeakyReLU, Module, NormalRng, Parameter, Sequential, StateDictError, kaimingNormal } from '../../server/engine/nn/index.js';
import type { OnnxGraph } from '../../server/engine/onnx/graph.js';
import type { Tensor } from '../../server/engine/torch.js';

const available = torchAvailable();
if (!available) console.warn('engine/nn libtorch tests skipped: libtorch binding not built (install libtorch-dev, run node scripts/build-native.mjs)');
const withTorch = available ? it : it.skip;

/** conv → norm → nonlin with an alias `all_modules.{i}`, like nnU-Net's ConvDropoutNormReLU. */
class Block extends Layer {
  readonly conv: Conv;
  readonly norm: InstanceNorm;
  constructor(cin: number, cout: number) {
    super();
    this.conv = this.addModule('conv', new Conv(cin, cout, [3, 3]));
    this.norm = this.addModule('norm', new InstanceNorm(cout));
    const nonlin = this.addModule('nonlin', new LeakyReLU());
    [this.conv, this.norm, nonlin].forEach((m, i) => this.addAlias(`all_modules.${i}`, m));
  }
  forward(x: Tensor): Tensor {
    return this.norm.forward(this.conv.forward(x)).leakyRelu(0.01);
  }
  toOnnx(g: OnnxGraph, input: string): string {
    return this.norm.toOnnx(g, this.conv.toOnnx(g, input));
  }
}

class Net extends Module {
  readonly scale = this.addParameter('scale', new Parameter([2]));
  readonly body = this.addModule('body', new Sequential([new Block(1, 2), new Block(2, 2)]));
}

const shapes = (m: Module, aliases = false) => m.namedParameters('', { aliases }).map(([k, p]) => `${k} [${p.shape.join(',')}]`);

describe('engine/nn module system', () => {
  it('names parameters by dotted path in registration order, own parameters first', () => {
    assert.deepEqual(shapes(new Net()), [
      'scale [2]',
      'body.0.conv.weight [2,1,3,3]',
      'body.0.conv.bias [2]',
      'body.0.norm.weight [2]',
      'body.0.norm.bias [2]',
      'body.1.conv.weight [2,2,3,3]',
      'body.1.conv.bias [2]',
      'body.1.norm.weight [2]',
      'body.1.norm.bias [2]',
    ]);
    assert.equal(new Net().numParameters(), 2 + (18 + 2 + 2 + 2) + (36 + 2 + 2 + 2));
  });

  it('lists alias keys only when asked, after the canonical keys of the same module', () => {
    const keys = shapes(new Net(), true).slice(1, 9);
    assert.deepEqual(keys, [
      'body.0.conv.weight [2,1,3,3]',
      'body.0.conv.bias [2]',
      'body.0.norm.weight [2]',
      'body.0.norm.bias [2]',
      'body.0.all_modules.0.weight [2,1,3,3]',
      'body.0.all_modules.0.bias [2]',
      'body.0.all_modules.1.weight [2]',
      'body.0.all_modules.1.bias [2]',
    ]);
    const sd = new Net().stateDict({ aliases: true });
    assert.equal(sd.size, 17);
    assert.equal(sd.get('body.1.all_modules.0.weight')!.data, sd.get('body.1.conv.weight')!.data, 'an alias shares the values');
  });

  it('round-trips a state dict into a fresh module without libtorch', () => {
    const a = new Net();
    a.parameters().forEach((p, i) => p.setValues(Float32Array.from({ length: p.numel }, (_, j) => i + j / 100)));
    const b = new Net();
    const report = b.loadStateDict(a.stateDict());
    assert.equal(report.loaded.length, 9);
    for (const [key, t] of a.stateDict()) assert.deepEqual(b.stateDict().get(key), t, key);
  });

  it('accepts and ignores alias keys (nnU-Net checkpoints carry them)', () => {
    const b = new Net();
    const report = b.loadStateDict(new Net().stateDict({ aliases: true }));
    assert.equal(report.loaded.length, 9);
    assert.equal(report.ignoredAliases.length, 8);
    assert.deepEqual(report.unexpected, []);
  });

  it('strict loading names every missing, unexpected and mis-shaped key and loads nothing', () => {
    const sd = new Net().stateDict();
    for (const t of sd.values()) t.data.fill(5);
    sd.delete('body.1.norm.bias');
    sd.set('body.2.conv.weight', { shape: [1], data: new Float32Array(1) });
    sd.set('body.0.conv.weight', { shape: [2, 1, 1, 3, 3], data: new Float32Array(18) });
    const target = new Net();
    assert.throws(
      () => target.loadStateDict(sd),
      (err: unknown) => {
        assert.ok(err instanceof StateDictError);
        assert.match(err.message, /missing body\.1\.norm\.bias \[2\]/);
        assert.match(err.message, /unexpected body\.2\.conv\.weight \[1\]/);
        assert.match(err.message, /shape mismatch body\.0\.conv\.weight: network \[2, 1, 3, 3\], weights \[2, 1, 1, 3, 3\]/);
        assert.match(err.message, /nothing loaded/);
        return true;
      },
    );
    assert.ok(target.parameters().every((p) => !p.values().includes(5)), 'nothing was loaded');

    const report = target.loadStateDict(sd, { strict: false });
    assert.deepEqual(report.missing, ['body.1.norm.bias']);
    assert.deepEqual(report.unexpected, ['body.2.conv.weight']);
    assert.deepEqual(report.mismatched.map((m) => m.key), ['body.0.conv.weight']);
    assert.equal(report.loaded.length, 7);
    assert.equal(target.scale.values()[0], 5);
  });

  it('reads float64 data and toFloat32() sources (checkpoint tensors), refuses integer data', () => {
    const conv = new Conv(1, 1, [1, 1]);
    conv.loadStateDict({ weight: { shape: [1, 1, 1, 1], data: Float64Array.of(0.25) }, bias: { shape: [1], toFloat32: () => Float32Array.of(-1) } });
    assert.deepEqual([conv.weight.values()[0], conv.bias!.values()[0]], [0.25, -1]);
    assert.throws(() => conv.loadStateDict({ weight: { shape: [1, 1, 1, 1], dtype: 'I64', data: BigInt64Array.of(1n) }, bias: { shape: [1], data: Float32Array.of(0) } }), /cannot read I64/);
  });

  it('train() and eval() switch the whole tree', () => {
    const net = new Net();
    net.eval();
    assert.ok(net.namedModules().every(([, m]) => !m.training));
    net.train();
    assert.ok(net.namedModules().every(([, m]) => m.training));
  });

  it('He initialisation draws N(0, 2/(1+a²)/fan_in), reproducibly by seed', () => {
    const p = new Parameter([64, 32, 3, 3, 3]);
    kaimingNormal(p, new NormalRng(3));
    const v = p.values();
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    const expected = Math.sqrt(2 / (1 + 1e-4)) / Math.sqrt(32 * 27);
    assert.ok(Math.abs(mean) < 0.02 * expected, `mean ${mean}`);
    assert.ok(Math.abs(std / expected - 1) < 0.02, `std ${std} vs ${expected}`);
    const q = new Parameter([64, 32, 3, 3, 3]);
    kaimingNormal(q, new NormalRng(3));
    assert.deepEqual(q.values(), v);
  });

  withTorch('materialize() moves values into libtorch; values()/setValues() work either way; release() brings them back', () => {
    const p = new Parameter([2, 2], Float32Array.of(1, 2, 3, 4));
    const t = p.materialize();
    assert.ok(p.isMaterialized && t.requiresGrad);
    assert.deepEqual(Array.from(p.values()), [1, 2, 3, 4]);
    p.setValues([5, 6, 7, 8]);
    assert.deepEqual(Array.from(t.data() as Float32Array), [5, 6, 7, 8]);
    p.release();
    assert.ok(!p.isMaterialized && t.isDisposed);
    assert.deepEqual(Array.from(p.values()), [5, 6, 7, 8]);
  });

  withTorch("Conv pads 'same' ((k−1)/2 per axis, anisotropic too) and strides", () => {
    tidy(() => {
      const x = tensor(new Float32Array(2 * 3 * 5 * 8 * 8), [2, 3, 5, 8, 8]);
      assert.deepEqual(new Conv(3, 4, [1, 3, 3]).forward(x).shape, [2, 4, 5, 8, 8]);
      assert.deepEqual(new Conv(3, 4, [3, 3, 3], { stride: [1, 2, 2] }).forward(x).shape, [2, 4, 5, 4, 4]);
      assert.deepEqual(new ConvTranspose(3, 2, [1, 2, 2]).forward(x).shape, [2, 2, 5, 16, 16]);
      assert.equal(new Conv(3, 4, [3, 3], { bias: false }).bias, null);
    });
  });

  withTorch('InstanceNorm uses instance statistics in eval mode too (no running stats)', () => {
    tidy(() => {
      const x = tensor(Float32Array.from({ length: 2 * 2 * 4 * 4 }, (_, i) => Math.sin(i) * 3 + (i % 7)), [2, 2, 4, 4]);
      const norm = new InstanceNorm(2);
      const train = norm.forward(x).toFloat32Array();
      const evalOut = norm.eval().forward(x).toFloat32Array();
      assert.deepEqual(evalOut, train);
      // per sample and channel: mean 0, biased variance 1 (up to eps)
      for (let c = 0; c < 4; c++) {
        const v = train.slice(c * 16, c * 16 + 16);
        const m = v.reduce((a, b) => a + b, 0) / 16;
        const variance = v.reduce((a, b) => a + (b - m) ** 2, 0) / 16;
        assert.ok(Math.abs(m) < 1e-5 && Math.abs(variance - 1) < 1e-3, `mean ${m} var ${variance}`);
      }
    });
  });

  withTorch('Dropout is active only in training; channel-wise dropout zeroes whole feature maps', () => {
    tidy(() => {
      const x = tensor(new Float32Array(4 * 8 * 3 * 3).fill(1), [4, 8, 3, 3]);
      const d = new Dropout(0.5, true);
      const y = noGrad(() => d.forward(x)).toFloat32Array();
      for (let map = 0; map < 32; map++) {
        const v = new Set(y.slice(map * 9, map * 9 + 9));
        assert.ok(v.size === 1 && (v.has(0) || v.has(2)), `feature map ${map}: ${[...v]}`);
      }
      d.eval();
      assert.equal(d.forward(x), x);
    });
  });

  withTorch('gradients reach every parameter through a Sequential', () => {
    const net = new Net();
    net.parameters().forEach((p, i) => p.setValues(Float32Array.from({ length: p.numel }, (_, j) => Math.cos(i + j))));
    net.materialize();
    tidy(() => {
      const x = tensor(Float32Array.from({ length: 2 * 1 * 6 * 6 }, (_, i) => Math.sin(i)), [2, 1, 6, 6]);
      const loss = F.mseLoss(net.body.forward(x), tensor(new Float32Array(2 * 2 * 6 * 6), [2, 2, 6, 6]));
      loss.backward();
      for (const [key, p] of net.namedParameters().slice(1)) assert.ok(p.tensor.grad !== null, `${key} has a gradient`);
    });
    net.release();
  });
});
