// Specification of the libtorch tensor engine: data round trips, op values checked by hand,
// autograd, the SGD/Nesterov update and clipping formulas, training a tiny 3D net, and that
// native memory stays flat and native errors surface as JS errors.
import assert from 'node:assert/strict';
import {
  F,
  GradScaler,
  SGD,
  Tensor,
  arange,
  clipGradNorm,
  cudaAvailable,
  cudaMemory,
  keep,
  liveTensors,
  manualSeed,
  noGrad,
  ones,
  randn,
  stack,
  tensor,
  tidy,
  torchAvailable,
  zeros,
} from '../../server/engine/torch.js';

const available = torchAvailable();
if (!available) {
  console.warn('engine/torch tests skipped: libtorch binding not built (install libtorch-dev, run node scripts/build-native.mjs)');
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `[${i}] ${actual[i]} != ${expected[i]}`);
  }
}

(available ? describe : describe.skip)('engine/torch (libtorch binding)', () => {
  let liveAtStart = 0;
  beforeEach(() => {
    liveAtStart = liveTensors();
  });

  describe('tensors', () => {
    it('round-trips every dtype with its shape', () => {
      tidy(() => {
        const f32 = tensor(new Float32Array([1.5, -2, 3, 4.25, 5, 6]), [2, 3]);
        assert.deepEqual(f32.shape, [2, 3]);
        assert.equal(f32.dtype, 'float32');
        assert.equal(f32.device, 'cpu');
        assert.deepEqual(Array.from(f32.data() as Float32Array), [1.5, -2, 3, 4.25, 5, 6]);

        const f64 = tensor(new Float64Array([Math.PI, 1e-300]), [2]);
        assert.equal(f64.dtype, 'float64');
        assert.deepEqual(Array.from(f64.data() as Float64Array), [Math.PI, 1e-300]);

        const i64 = tensor(new BigInt64Array([2n ** 40n, -3n]), [2, 1]);
        assert.equal(i64.dtype, 'int64');
        assert.deepEqual(Array.from(i64.data() as BigInt64Array), [2n ** 40n, -3n]);

        const fromI32 = tensor(new Int32Array([7, -8, 9]), [3], { dtype: 'int64' });
        assert.equal(fromI32.dtype, 'int64');
        assert.deepEqual(Array.from(fromI32.data() as BigInt64Array), [7n, -8n, 9n]);

        const i32 = tensor(new Int32Array([1, 2]));
        assert.equal(i32.dtype, 'int32');
        assert.deepEqual(Array.from(i32.data() as Int32Array), [1, 2]);

        const u8 = tensor(new Uint8Array([0, 255, 7]));
        assert.equal(u8.dtype, 'uint8');
        assert.deepEqual(Array.from(u8.data() as Uint8Array), [0, 255, 7]);

        const b = tensor(new Uint8Array([0, 3, 1]), [3], { dtype: 'bool' });
        assert.equal(b.dtype, 'bool');
        assert.deepEqual(Array.from(b.data() as Uint8Array), [0, 1, 1]);

        assert.deepEqual(Array.from(fromI32.toFloat32Array()), [7, -8, 9]);
        assert.deepEqual(Array.from(tensor([2 ** 24 + 1], [1], { dtype: 'int64' }).data() as BigInt64Array), [16777217n]);
        assert.equal(f32.sum().item(), 17.75);
        assert.equal(f32.to('float64').dtype, 'float64');
      });
      assert.equal(liveTensors(), liveAtStart);
    });

    it('broadcasts arithmetic and promotes types as torch', () => {
      tidy(() => {
        const a = tensor([1, 2, 3], [3, 1]);
        const b = tensor([10, 20], [1, 2]);
        assert.deepEqual(Array.from(a.add(b).toFloat32Array()), [11, 21, 12, 22, 13, 23]);
        assert.deepEqual(a.add(b).shape, [3, 2]);
        const ints = arange(0, 4);
        assert.equal(ints.dtype, 'int64');
        assert.equal(ints.mul(2).dtype, 'int64');
        assert.equal(ints.div(2).dtype, 'float32');
        assert.deepEqual(Array.from(ints.gt(1).data() as Uint8Array), [0, 0, 1, 1]);
        assert.deepEqual(Array.from(a.clamp(1.5, 2.5).toFloat32Array()), [1.5, 2, 2.5]);
        const m = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
        assert.deepEqual(Array.from(m.sum(1).toFloat32Array()), [6, 15]);
        assert.deepEqual(m.mean(0, true).shape, [1, 3]);
        assert.deepEqual(Array.from(m.max(1).toFloat32Array()), [3, 6]);
        assert.deepEqual(Array.from(m.argmax(1).data() as BigInt64Array), [2n, 2n]);
        assert.deepEqual(Array.from(m.matmul(m.transpose(0, 1)).toFloat32Array()), [14, 32, 32, 77]);
      });
    });
  });

  describe('ops', () => {
    it('conv3d matches a value computed by hand (cross-correlation, bias, padding, stride)', () => {
      tidy(() => {
        const x = arange(1, 28, 1, { dtype: 'float32' }).reshape([1, 1, 3, 3, 3]);
        const w = ones([1, 1, 3, 3, 3]);
        const bias = tensor([0.5]);
        // 1 + 2 + ... + 27 = 378
        assert.deepEqual(Array.from(F.conv3d(x, w, { bias }).toFloat32Array()), [378.5]);
        // zero padding: the corner sees the 2x2x2 block 1,2,4,5,10,11,13,14 = 60
        const padded = F.conv3d(x, w, { padding: 1 });
        assert.deepEqual(padded.shape, [1, 1, 3, 3, 3]);
        assert.equal(padded.toFloat32Array()[0], 60);
        // a kernel with a single 1 at its first tap picks x[z, y, x] (no flip); stride 2 keeps corners
        const tap = zeros([1, 1, 3, 3, 3]);
        tap.view([-1]).narrow(0, 0, 1).fill_(1);
        const picked = F.conv3d(x, tap, { padding: 1, stride: 2 });
        assert.deepEqual(picked.shape, [1, 1, 2, 2, 2]);
        assert.deepEqual(Array.from(picked.toFloat32Array()), [0, 0, 0, 0, 0, 0, 0, 14]);
        // transposed conv with stride 2 and a 2x2x2 kernel of ones upsamples by copying
        const up = F.convTranspose3d(ones([1, 1, 1, 1, 1]).mul(3), ones([1, 1, 2, 2, 2]), { stride: 2 });
        assert.deepEqual(up.shape, [1, 1, 2, 2, 2]);
        assert.deepEqual(Array.from(up.toFloat32Array()), new Array(8).fill(3));
      });
    });

    it('instance_norm normalises each sample and channel, then applies the affine', () => {
      tidy(() => {
        const x = tensor([1, 2, 3, 4, 10, 10, 20, 20], [1, 2, 4]);
        const y = F.instanceNorm(x, { weight: tensor([2, 1]), bias: tensor([0, 1]), eps: 1e-5 });
        const s0 = Math.sqrt(1.25 + 1e-5); // biased variance of 1..4
        const s1 = Math.sqrt(25 + 1e-5); // of 10,10,20,20
        close(y.toFloat32Array(), [
          (2 * -1.5) / s0,
          (2 * -0.5) / s0,
          (2 * 0.5) / s0,
          (2 * 1.5) / s0,
          1 - 5 / s1,
          1 - 5 / s1,
          1 + 5 / s1,
          1 + 5 / s1,
        ]);
      });
    });

    it('softmax sums to 1 over its dim; log_softmax is its log', () => {
      tidy(() => {
        manualSeed(1);
        const logits = randn([2, 4, 3, 3]).mul(5);
        close(F.softmax(logits, 1).sum(1).toFloat32Array(), new Array(18).fill(1));
        close(F.logSoftmax(logits, 1).exp().toFloat32Array(), F.softmax(logits, 1).toFloat32Array(), 1e-5);
      });
    });

    it('cross_entropy equals -mean(log_softmax gathered at the target), skipping ignore_index', () => {
      tidy(() => {
        const logits = tensor([2, 0, 1, 0, 3, 1, 1, 1, 1], [3, 3]); // [N=3, C=3]
        const target = tensor(new Int32Array([0, 1, 2]), [3], { dtype: 'int64' });
        const logp = logits.logSoftmax(1);
        const picked = logp.gather(1, target.unsqueeze(1)).neg();
        close([F.crossEntropy(logits, target).item()], [picked.mean().item()]);
        const ignoring = tensor(new Int32Array([0, -100, 2]), [3], { dtype: 'int64' });
        const p = picked.toFloat32Array();
        close([F.nllLoss(logp, ignoring).item()], [(p[0] + p[2]) / 2]);
        assert.deepEqual(Array.from(F.oneHot(target, 3).data() as BigInt64Array), [1n, 0n, 0n, 0n, 1n, 0n, 0n, 0n, 1n]);
      });
    });

    it('grid_sample over the identity affine grid returns the input (2D and 3D)', () => {
      tidy(() => {
        const x2 = randn([1, 2, 4, 5]);
        const t2 = tensor([1, 0, 0, 0, 1, 0], [1, 2, 3]);
        const g2 = F.affineGrid(t2, [1, 2, 4, 5], false);
        close(F.gridSample(x2, g2, { mode: 'bilinear', paddingMode: 'zeros', alignCorners: false }).toFloat32Array(), x2.toFloat32Array(), 1e-5);
        const x3 = randn([1, 1, 3, 4, 5]);
        const t3 = tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], [1, 3, 4]);
        const g3 = F.affineGrid(t3, [1, 1, 3, 4, 5], true);
        close(F.gridSample(x3, g3, { mode: 'nearest', paddingMode: 'border', alignCorners: true }).toFloat32Array(), x3.toFloat32Array(), 1e-6);
      });
    });

    it('interpolates (nearest, trilinear, area) and pads', () => {
      tidy(() => {
        const x = tensor([1, 2, 3, 4], [1, 1, 1, 2, 2]);
        const up = F.interpolate(x, { scaleFactor: [1, 2, 2], mode: 'nearest' });
        assert.deepEqual(up.shape, [1, 1, 1, 4, 4]);
        assert.deepEqual(Array.from(up.toFloat32Array()).slice(0, 4), [1, 1, 2, 2]);
        const tri = F.interpolate(x, { size: [1, 3, 3], mode: 'trilinear', alignCorners: true });
        assert.equal(tri.toFloat32Array()[4], 2.5);
        const area = F.interpolate(up, { size: [1, 2, 2], mode: 'area' });
        assert.deepEqual(Array.from(area.toFloat32Array()), [1, 2, 3, 4]);
        assert.deepEqual(F.pad(x, [1, 1, 0, 2], 'constant', -1).shape, [1, 1, 1, 4, 4]);
        assert.deepEqual(Array.from(stack([x, x], 0).flip(-1).toFloat32Array()).slice(0, 2), [2, 1]);
      });
    });
  });

  describe('autograd and optimiser', () => {
    it('the gradient of sum(x*x) is 2x', () => {
      tidy(() => {
        const x = tensor([1, -2, 3.5]).requiresGrad_();
        x.mul(x).sum().backward();
        assert.deepEqual(Array.from(x.grad!.toFloat32Array()), [2, -4, 7]);
        assert.equal(noGrad(() => x.mul(2).requiresGrad), false);
      });
    });

    it('an SGD Nesterov step equals the formula (lr 0.01, momentum 0.99, weight decay 3e-5)', () => {
      const lr = 0.01;
      const m = 0.99;
      const wd = 3e-5;
      const p = tensor(new Float64Array([1, -2]), [2]).requiresGrad_().keep();
      const opt = new SGD([p], { lr, momentum: m, weightDecay: wd, nesterov: true });
      let pv = [1, -2];
      let buf: number[] | null = null;
      for (const g of [
        [0.5, 0.25],
        [-0.1, 0.3],
      ]) {
        tidy(() => {
          p.grad = tensor(new Float64Array(g), [2]);
          opt.step();
        });
        const d = g.map((gi, i) => gi + wd * pv[i]);
        buf = buf === null ? d : buf.map((b, i) => m * b + d[i]);
        const nd = d.map((di, i) => di + m * buf![i]);
        pv = pv.map((v, i) => v - lr * nd[i]);
        close(p.data() as Float64Array, pv, 1e-12);
        close(opt.momentumBuffers[0]!.data() as Float64Array, buf, 1e-12);
      }
      opt.dispose();
      p.dispose();
      assert.equal(liveTensors(), liveAtStart);
    });

    it('clipGradNorm returns the total norm and scales gradients to maxNorm', () => {
      tidy(() => {
        const a = zeros([2]).requiresGrad_();
        const b = zeros([1]).requiresGrad_();
        a.grad = tensor([3, 4]);
        b.grad = tensor([12]);
        const total = clipGradNorm([a, b], 6.5);
        close([total], [13]);
        const coef = 6.5 / (13 + 1e-6);
        close(a.grad!.toFloat32Array(), [3 * coef, 4 * coef]);
        close(b.grad!.toFloat32Array(), [12 * coef]);
        close([clipGradNorm([a, b], 100)], [6.5], 1e-5);
      });
    });

    it('GradScaler skips the step and backs off when a gradient is not finite', () => {
      tidy(() => {
        const p = ones([2]).requiresGrad_();
        const opt = new SGD([p], { lr: 1 });
        const scaler = new GradScaler({ initScale: 8 });
        p.grad = tensor([16, Infinity]);
        assert.equal(scaler.step(opt, [p]), false);
        scaler.update();
        assert.equal(scaler.scale, 4);
        p.grad = tensor([8, 4]);
        assert.equal(scaler.step(opt, [p]), true);
        scaler.update();
        assert.deepEqual(Array.from(p.toFloat32Array()), [-1, 0]);
      });
    });
  });

  describe('training and memory', () => {
    // conv(1->4, 3^3) - instance norm - leaky relu - conv(4->2, 1^3), as one nnU-Net stage in miniature
    function makeNet() {
      manualSeed(0);
      const params = tidy(() =>
        [randn([4, 1, 3, 3, 3]).mul(0.3), zeros([4]), randn([2, 4, 1, 1, 1]).mul(0.3), zeros([2])].map((t) => t.requiresGrad_()),
      );
      const forward = (x: Tensor) => {
        const h = F.conv3d(x, params[0], { bias: params[1], padding: 1 });
        const a = F.instanceNorm(h, { eps: 1e-5 }).leakyRelu(0.01);
        return F.conv3d(a, params[2], { bias: params[3] });
      };
      return { params, forward };
    }

    it('a tiny 3D conv net trained by SGD on a fixed batch lowers its loss', () => {
      const { params, forward } = makeNet();
      const x = keep(randn([2, 1, 6, 6, 6]));
      const y = tidy(() => x.gt(0).squeeze(1).to('int64'));
      const opt = new SGD(params, { lr: 0.05, momentum: 0.9, nesterov: true });
      const losses: number[] = [];
      for (let step = 0; step < 40; step++) {
        losses.push(
          tidy(() => {
            opt.zeroGrad();
            const loss = F.crossEntropy(forward(x), y);
            loss.backward();
            opt.step();
            return loss.item();
          }),
        );
      }
      assert.ok(losses[39] < 0.7 * losses[0], `loss ${losses[0]} -> ${losses[39]}`);
      for (const t of [...params, x, y]) t.dispose();
      opt.dispose();
      assert.equal(liveTensors(), liveAtStart);
    });

    it('memory stays flat over 1,000 training steps (live tensors and RSS)', () => {
      const { params, forward } = makeNet();
      const x = keep(randn([1, 1, 4, 4, 4]));
      const target = keep(randn([1, 2, 4, 4, 4]));
      const opt = new SGD(params, { lr: 0.01, momentum: 0.99, weightDecay: 3e-5, nesterov: true });
      const step = () =>
        tidy(() => {
          opt.zeroGrad();
          const loss = F.mseLoss(forward(x), target);
          loss.backward();
          clipGradNorm(params, 12);
          opt.step();
        });
      for (let i = 0; i < 50; i++) step(); // warm up allocator caches and momentum buffers
      const live = liveTensors();
      const rss = process.memoryUsage().rss;
      for (let i = 0; i < 1000; i++) step();
      assert.equal(liveTensors(), live);
      const growthMb = (process.memoryUsage().rss - rss) / 2 ** 20;
      assert.ok(growthMb < 30, `RSS grew by ${growthMb.toFixed(1)} MB`);
      for (const t of [...params, x, target]) t.dispose();
      opt.dispose();
      assert.equal(liveTensors(), liveAtStart);
    });

    it('tidy disposes what it created except returned and kept tensors', () => {
      const before = liveTensors();
      let inner: Tensor | null = null;
      const kept = tidy(() => {
        inner = ones([3]).add(1);
        const k = keep(zeros([1]));
        return { out: inner.mul(2), k };
      });
      assert.equal(liveTensors(), before + 2);
      assert.equal(inner!.isDisposed, true);
      assert.deepEqual(Array.from(kept.out.toFloat32Array()), [4, 4, 4]);
      kept.out.dispose();
      kept.k.dispose();
      assert.equal(liveTensors(), before);
    });
  });

  describe('errors', () => {
    it('using a disposed tensor throws a clear error', () => {
      const t = ones([2]);
      t.dispose();
      assert.equal(t.isDisposed, true);
      assert.throws(() => t.add(1), /Tensor was disposed/);
      assert.throws(() => t.shape, /Tensor was disposed/);
      const escaped = tidy(() => {
        const inside = ones([1]);
        return [inside.shape, inside] as const;
      })[1];
      assert.equal(escaped.isDisposed, false);
      escaped.dispose();
      t.dispose();
    });

    it("a shape mismatch throws a JS Error carrying libtorch's message", () => {
      tidy(() => {
        const a = ones([2, 3]);
        const b = ones([4]);
        assert.throws(
          () => a.add(b),
          (e: unknown) => e instanceof Error && /size of tensor a \(3\) must match the size of tensor b \(4\)/.test(e.message),
        );
        assert.throws(() => F.conv3d(ones([1, 2, 4, 4, 4]), ones([1, 3, 3, 3, 3])), /expected input.*to have 3 channels|channels/);
        assert.throws(() => a.matmul(a), /mat1 and mat2 shapes cannot be multiplied|size mismatch|shapes/);
        // the process is still alive and the engine still works
        assert.equal(a.sum().item(), 6);
      });
    });
  });

  describe('devices', () => {
    it('reports CUDA availability; memory queries answer null without CUDA', () => {
      if (!cudaAvailable()) assert.equal(cudaMemory(), null);
      else assert.equal(typeof cudaMemory()?.allocated, 'number');
    });
  });
});
