// Specification of the training losses: soft Dice, robust CE, Dice+CE, Dice+BCE and deep
// supervision on tiny tensors worked out by hand; then values and gradients against nnU-Net's
// formulas re-written in a few lines of PyTorch; and that 1,000 steps leave no tensor behind.
import assert from 'node:assert/strict';
import {
  DeepSupervisionWrapper,
  DiceBCELoss,
  DiceCELoss,
  deepSupervisionScales,
  deepSupervisionWeights,
  robustCrossEntropy,
  softDiceLoss,
  type Loss,
} from '../../server/engine/loss/index.js';
import { buildCases, mulberry32, randomLabels, randomLogits, runReference } from './loss-reference.js';
import { getNumThreads, liveTensors, scalar, setNumThreads, tensor, tidy, torchAvailable, zeroGrad } from '../../server/engine/torch.js';
import { pythonHas } from '../helpers.js';

const available = torchAvailable();
if (!available) console.warn('engine/loss tests skipped: libtorch binding not built');
const hasTorch = available && pythonHas('torch');
if (available && !hasTorch) console.warn('engine/loss PyTorch cross-checks skipped: /usr/bin/python3 cannot import torch');

const S = 1e-5; // nnU-Net's smooth
const LN2 = Math.log(2);

function close(actual: number, expected: number, tol = 1e-6, what = 'value'): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} != ${expected}`);
}
function closeAll(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} != ${expected[i]}`);
  }
}

(available ? describe : describe.skip)('engine/loss', () => {
  let liveAtStart = 0;
  beforeEach(() => {
    liveAtStart = liveTensors();
  });
  afterEach(() => {
    assert.equal(liveTensors(), liveAtStart, 'every tensor of the test was released');
  });

  describe('softDiceLoss (MemoryEfficientSoftDiceLoss)', () => {
    // One sample, 2 classes, 4 voxels; probabilities given directly (nonlin null). Foreground row
    // p1 = [0.9, 0.2, 0.6, 0.1], labels [1, 0, 1, 0].
    const probs = () => tensor([0.1, 0.8, 0.4, 0.9, 0.9, 0.2, 0.6, 0.1], [1, 2, 4]);
    const labels = () => tensor(new Int32Array([1, 0, 1, 0]), [1, 1, 4], { dtype: 'int64' });

    it('drops the background and computes (2I + s) / (P + G + s)', () => {
      tidy(() => {
        // I = 0.9 + 0.6 = 1.5, P = 1.8, G = 2 -> dc = (3 + s) / (3.8 + s)
        close(softDiceLoss(probs(), labels(), { nonlin: null }).item(), -(3 + S) / (3.8 + S));
      });
    });

    it('keeps the background with doBg and averages the classes', () => {
      tidy(() => {
        // background: I = 0.8 + 0.9 = 1.7, P = 2.2, G = 2 -> (3.4 + s) / (4.2 + s)
        const expected = -((3.4 + S) / (4.2 + S) + (3 + S) / (3.8 + S)) / 2;
        close(softDiceLoss(probs(), labels(), { nonlin: null, doBg: true }).item(), expected);
      });
    });

    it('excludes masked voxels from I, P and G', () => {
      tidy(() => {
        // voxel 2 masked: I = 0.9, P = 0.9 + 0.2 + 0.1 = 1.2, G = 1 -> (1.8 + s) / (2.2 + s)
        const mask = tensor(new Uint8Array([1, 1, 0, 1]), [1, 1, 4], { dtype: 'bool' });
        close(softDiceLoss(probs(), labels(), { nonlin: null, lossMask: mask }).item(), -(1.8 + S) / (2.2 + S));
      });
    });

    it('batch Dice sums over the batch before the ratio; otherwise it averages per-sample ratios', () => {
      tidy(() => {
        // sample 0: p1 = [1, 0], labels [1, 0] -> I 1, P 1, G 1 -> dc 1
        // sample 1: p1 = [0.5, 0.5], labels [0, 0] -> I 0, P 1, G 0 -> dc s / (1 + s)
        const p = tensor([0, 1, 1, 0, 0.5, 0.5, 0.5, 0.5], [2, 2, 2]);
        const y = tensor(new Int32Array([1, 0, 0, 0]), [2, 1, 2], { dtype: 'int64' });
        close(softDiceLoss(p, y, { nonlin: null }).item(), -(1 + S / (1 + S)) / 2);
        // batch: I 1, P 2, G 1 -> (2 + s) / (3 + s)
        close(softDiceLoss(p, y, { nonlin: null, batchDice: true }).item(), -(2 + S) / (3 + S));
      });
    });

    it('applies softmax to logits and accepts a label map without the channel dimension', () => {
      tidy(() => {
        // logits [0, ln 3] -> softmax [0.25, 0.75] at every voxel; labels [1, 0, 1]
        // I = 1.5, P = 2.25, G = 2 -> (3 + s) / (4.25 + s)
        const logits = tensor([0, 0, 0, Math.log(3), Math.log(3), Math.log(3)], [1, 2, 3]);
        const y = tensor(new Int32Array([1, 0, 1]), [1, 3], { dtype: 'int64' });
        close(softDiceLoss(logits, y).item(), -(3 + S) / (4.25 + S), 1e-6);
      });
    });

    it('takes a target shaped like the output as one-hot (regions) and applies sigmoid', () => {
      tidy(() => {
        // sigmoid(0) = 0.5 everywhere; target [1, 0, 1, 1]: I 1.5, P 2, G 3 -> (3 + s) / (5 + s)
        const logits = tensor([0, 0, 0, 0], [1, 1, 4]);
        const y = tensor([1, 0, 1, 1], [1, 1, 4]);
        close(softDiceLoss(logits, y, { nonlin: 'sigmoid', doBg: true }).item(), -(3 + S) / (5 + S));
      });
    });
  });

  describe('robustCrossEntropy', () => {
    it('squeezes a channel of 1, casts the target and averages over non-ignored voxels', () => {
      tidy(() => {
        // softmax([0, ln 3]) = [0.25, 0.75]; targets [1, 0, 1] -> (2 ln(4/3) + ln 4) / 3
        const logits = tensor([0, 0, 0, Math.log(3), Math.log(3), Math.log(3)], [1, 2, 3]);
        const target = tensor([1, 0, 1], [1, 1, 3]); // float32, as nnU-Net's targets often are
        close(robustCrossEntropy(logits, target).item(), (2 * Math.log(4 / 3) + Math.log(4)) / 3);
        // ignoring label 0 leaves the two voxels of class 1: ln(4/3)
        close(robustCrossEntropy(logits, target, { ignoreIndex: 0 }).item(), Math.log(4 / 3));
        assert.throws(() => robustCrossEntropy(logits, tensor([1, 0, 1, 1, 0, 1], [1, 2, 3])), /channel dimension of 1/);
      });
    });
  });

  describe('DiceCELoss (DC_and_CE_loss)', () => {
    const logits = () => tensor([0, 0, 0, 0, Math.log(3), Math.log(3), Math.log(3), Math.log(3)], [1, 2, 4]);

    it('is CE + (−Dice) without ignore label', () => {
      tidy(() => {
        // labels [1, 0, 1, 1]: CE = (3 ln(4/3) + ln 4) / 4; Dice: I 2.25, P 3, G 3 -> (4.5 + s) / (6 + s)
        const y = tensor([1, 0, 1, 1], [1, 1, 4]);
        const expected = (3 * Math.log(4 / 3) + Math.log(4)) / 4 - (4.5 + S) / (6 + S);
        close(new DiceCELoss({ batchDice: false }).forward(logits(), y).item(), expected);
      });
    });

    it('removes ignore-label voxels from both terms', () => {
      tidy(() => {
        // labels [1, 0, 2, 1], ignore 2: CE over 3 voxels (2 ln(4/3) + ln 4) / 3;
        // Dice on voxels 0, 1, 3: I 1.5, P 2.25, G 2 -> (3 + s) / (4.25 + s)
        const y = tensor([1, 0, 2, 1], [1, 1, 4]);
        const expected = (2 * Math.log(4 / 3) + Math.log(4)) / 3 - (3 + S) / (4.25 + S);
        close(new DiceCELoss({ batchDice: false, ignoreLabel: 2 }).forward(logits(), y).item(), expected);
      });
    });

    it('drops CE when nothing is annotated (Dice of empty sums is s / s = 1)', () => {
      tidy(() => {
        const x = logits().requiresGrad_();
        const loss = new DiceCELoss({ batchDice: true, ignoreLabel: 2 }).forward(x, tensor([2, 2, 2, 2], [1, 1, 4]));
        close(loss.item(), -1);
        loss.backward();
        closeAll(x.grad!.toFloat32Array(), new Array(8).fill(0), 0, 'grad');
      });
    });

    it('honours the term weights', () => {
      tidy(() => {
        const y = tensor([1, 0, 1, 1], [1, 1, 4]);
        const ce = (3 * Math.log(4 / 3) + Math.log(4)) / 4;
        const dc = (4.5 + S) / (6 + S);
        close(new DiceCELoss({ batchDice: false, weightCE: 2, weightDice: 0.5 }).forward(logits(), y).item(), 2 * ce - 0.5 * dc);
        close(new DiceCELoss({ batchDice: false, weightDice: 0 }).forward(logits(), y).item(), ce);
      });
    });
  });

  describe('DiceBCELoss (DC_and_BCE_loss)', () => {
    it('is BCE + (−Dice over sigmoids, background kept)', () => {
      tidy(() => {
        // logits 0: BCE = ln 2 per voxel; target [1, 0, 1, 1]: Dice (3 + s) / (5 + s)
        const loss = new DiceBCELoss({ batchDice: false }).forward(tensor([0, 0, 0, 0], [1, 1, 4]), tensor([1, 0, 1, 1], [1, 1, 4]));
        close(loss.item(), LN2 - (3 + S) / (5 + S));
      });
    });

    it('reads the ignore mask from the last channel and divides BCE by the unmasked voxel count', () => {
      tidy(() => {
        // 2 regions, logits 0, voxel 3 ignored. BCE: 2 regions × 3 voxels × ln 2 over 3 voxels = 2 ln 2
        // (nnU-Net's normalisation, twice a plain mean). Region A [1, 0, 1 | x] -> I 1, P 1.5, G 2;
        // region B [0, 1, 1 | x] -> the same -> Dice (2 + s) / (3.5 + s) for both.
        const target = tensor(new Uint8Array([1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1]), [1, 3, 4], { dtype: 'bool' });
        const loss = new DiceBCELoss({ batchDice: true, useIgnoreLabel: true }).forward(tensor(new Array(8).fill(0), [1, 2, 4]), target);
        close(loss.item(), 2 * LN2 - (2 + S) / (3.5 + S));
      });
    });
  });

  describe('deep supervision', () => {
    it('weights 1/2^i, zero for the lowest resolution (1e-6 under DDP), normalised to 1', () => {
      // 5 outputs: [1, 1/2, 1/4, 1/8, 0] / 1.875
      closeAll(deepSupervisionWeights(5), [0.5333333, 0.2666667, 0.1333333, 0.0666667, 0], 1e-6, 'n=5');
      closeAll(deepSupervisionWeights(3), [2 / 3, 1 / 3, 0], 1e-12, 'n=3');
      closeAll(deepSupervisionWeights(3, { ddp: true }), [1 / 1.500001, 0.5 / 1.500001, 1e-6 / 1.500001], 1e-12, 'ddp');
      assert.deepEqual(deepSupervisionWeights(1), [1]);
    });

    it('scales are 1 / cumprod(strides) without the last stage', () => {
      assert.deepEqual(deepSupervisionScales([[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]]), [
        [1, 1, 1],
        [1, 0.5, 0.5],
        [0.5, 0.25, 0.25],
      ]);
      assert.deepEqual(deepSupervisionScales([1, 2, 2]), [[1], [0.5]]);
    });

    it('sums the weighted terms and never evaluates a zero-weight one', () => {
      tidy(() => {
        const seen: number[] = [];
        const fake: Loss = { forward: (out) => (seen.push(out.item()), out.mul(1)) };
        const ds = new DeepSupervisionWrapper(fake, deepSupervisionWeights(3));
        // 2/3 · 1 + 1/3 · 10 = 4; the 100 of the zero-weighted output is never looked at
        close(ds.forward([scalar(1), scalar(10), scalar(100)], [scalar(0), scalar(0), scalar(0)]).item(), 4);
        assert.deepEqual(seen, [1, 10]);
        assert.throws(() => ds.forward([scalar(1)], [scalar(0), scalar(0)]), /1 outputs but 2 targets/);
      });
    });
  });

  (hasTorch ? describe : describe.skip)('against nnU-Net formulas in PyTorch', () => {
    it('matches loss values and gradients for labels, ignore label, regions and deep supervision', function () {
      this.timeout(120000);
      const cases = buildCases();
      const reference = runReference(cases.map((c) => c.spec));
      cases.forEach((c, i) => {
        tidy(() => {
          const outputs = c.spec.outputs.map((o) => tensor(Float32Array.from(o.data), o.shape).requiresGrad_());
          const targets = c.spec.targets.map((t) => tensor(Float32Array.from(t.data), t.shape, { dtype: t.dtype as 'float32' }));
          const loss = c.run(outputs, targets);
          loss.backward();
          const ref = reference[i];
          close(loss.item(), ref.loss, 2e-6, `${c.spec.name} loss`);
          outputs.forEach((o, k) => {
            const g = o.grad;
            if (ref.grads[k] === null) assert.equal(g, null, `${c.spec.name}: output ${k} has no gradient`);
            else closeAll(g!.toFloat32Array(), ref.grads[k]!, 1e-4, `${c.spec.name} grad ${k}`);
          });
        });
      });
    });
  });

  it('1,000 deep-supervised Dice+CE steps inside tidy() leave the live tensor count flat', function () {
    this.timeout(120000);
    const ds = new DeepSupervisionWrapper(new DiceCELoss({ batchDice: true, ignoreLabel: 3 }), deepSupervisionWeights(3));
    const rand = mulberry32(7);
    const shapes = [[2, 3, 8, 8], [2, 3, 4, 4], [2, 3, 2, 2]];
    const outputs = shapes.map((s) => tensor(randomLogits(rand, s), s).requiresGrad_());
    const targets = shapes.map((s) => tensor(randomLabels(rand, [s[0], 1, ...s.slice(2)], 4), [s[0], 1, ...s.slice(2)]));
    // One intra-op thread: on tiny tensors OpenMP hand-offs cost more than the work (15× slower on a busy 2-core host).
    const threads = getNumThreads();
    setNumThreads(1);
    try {
      const before = liveTensors();
      for (let i = 0; i < 1000; i++) {
        tidy(() => {
          ds.forward(outputs, targets).backward();
        });
        zeroGrad(outputs);
        if (i % 250 === 0 || i === 999) assert.equal(liveTensors(), before, `after step ${i + 1}`);
      }
    } finally {
      setNumThreads(threads);
      for (const t of [...outputs, ...targets]) t.dispose();
    }
  });
});
