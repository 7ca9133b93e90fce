// Specification of the on-device augmentation (REFERENCE §5.3): the spatial transform's geometry
// (90° rotations of a known pattern, scaling keeps labels on the image, −1 outside, integer crop),
// each intensity transform's statistics, and the label-side transforms (mask, regions + ignore,
// cascade one-hot, morphology, component removal, deep-supervision targets).
import assert from 'node:assert/strict';
import { F, rand, tensor, tidy, torchAvailable, zeros, type Tensor } from '../../../server/engine/torch.js';
import { LabelManager } from '../../../server/dataset/labels.js';
import { trainingSample, validationSample } from '../../../server/training/data/augment.js';
import { planPipeline } from '../../../server/training/data/batch-source.js';
import {
  contrast,
  gamma,
  gaussianBlur,
  gaussianKernel,
  gaussianNoise,
  multiplicativeBrightness,
  simulateLowResolution,
} from '../../../server/training/data/intensity.js';
import { DecisionRng } from '../../../server/training/data/rng.js';
import { affineMatrix, affineTheta, mirror, nearestExactIndices, resizeNearestExact, samplingGrid, spatialTransform } from '../../../server/training/data/spatial.js';
import {
  appendPreviousStageOneHot,
  applyBinaryOperators,
  ballKernel,
  binaryOperator,
  maskImage,
  removeRandomComponents,
  segToRegions,
} from '../../../server/training/data/targets.js';

const available = torchAvailable();
if (!available) console.warn('training/data augmentation tests skipped: libtorch binding not built (install libtorch-dev, run node scripts/build-native.mjs)');

const f32 = (t: Tensor) => Array.from(t.toFloat32Array());
const stats = (v: number[]) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
  return { mean, sd, min: Math.min(...v), max: Math.max(...v) };
};

/** A label volume with blobs of 1 and 2 and a −1 border slab, plus an image equal to 10 × label. */
function blobs(shape: number[]): { seg: Int16Array; img: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const seg = new Int16Array(n);
  const c = shape.map((s) => (s - 1) / 2);
  for (let i = 0; i < n; i++) {
    let rest = i;
    const p: number[] = [];
    for (let d = shape.length - 1; d >= 0; d--) {
      p.unshift(rest % shape[d]);
      rest = Math.floor(rest / shape[d]);
    }
    const r1 = Math.hypot(...p.map((x, d) => (x - c[d] * 0.8) / (shape[d] * 0.3)));
    const r2 = Math.hypot(...p.map((x, d) => (x - c[d] * 1.2) / (shape[d] * 0.15)));
    seg[i] = p[shape.length - 1] < 2 ? -1 : r2 < 1 ? 2 : r1 < 1 ? 1 : 0;
  }
  return { seg, img: Float32Array.from(seg, (v) => 10 * Math.max(v, 0)) };
}

(available ? describe : describe.skip)('training/data/augment (libtorch)', () => {
  describe('spatial transform', () => {
    it('rotates a 2D pattern by 90° exactly: out[i][j] = in[S−1−j][i]', () =>
      tidy(() => {
        const S = 9;
        const img = rand([1, S, S]);
        const seg = tensor(Int16Array.from({ length: S * S }, (_, i) => i % 3), [1, S, S]);
        const out = spatialTransform(img, seg, [S, S], affineMatrix([Math.PI / 2], 1), 2);
        const a = f32(img), b = f32(out.img), sa = f32(seg), sb = f32(out.seg);
        for (let i = 0; i < S; i++) {
          for (let j = 0; j < S; j++) {
            assert.ok(Math.abs(b[i * S + j] - a[(S - 1 - j) * S + i]) < 1e-5, `${i},${j}`);
            assert.equal(sb[i * S + j], sa[(S - 1 - j) * S + i]);
          }
        }
      }));

    it('rotates about axis 0 in 3D with the first angle: out[k][i][j] = in[k][S−1−j][i]', () =>
      tidy(() => {
        const S = 6;
        const img = rand([1, S, S, S]);
        const out = spatialTransform(img, zeros([1, S, S, S], { dtype: 'int16' }), [S, S, S], affineMatrix([Math.PI / 2, 0, 0], 1), 1);
        const a = f32(img), b = f32(out.img);
        for (let k = 0; k < S; k++) for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
          assert.ok(Math.abs(b[(k * S + i) * S + j] - a[(k * S + (S - 1 - j)) * S + i]) < 1e-5);
        }
      }));

    it('keeps labels on the image under scaling and rotation, and marks outside voxels −1', () =>
      tidy(() => {
        const S = [40, 40, 40];
        const { seg, img } = blobs(S);
        const out = spatialTransform(tensor(img, [1, ...S]), tensor(seg, [1, ...S]), [32, 32, 32], affineMatrix([0.3, -0.2, 0.5], 1.4), 2);
        const im = f32(out.img), lab = f32(out.seg);
        let agree = 0, labelled = 0;
        lab.forEach((l, i) => {
          if (l < 0) return;
          labelled++;
          if (Math.abs(im[i] - 10 * l) < 5) agree++;
        });
        assert.ok(agree / labelled > 0.95, `agreement ${agree / labelled}`);
        // s = 1.4 samples beyond the input at the patch corners: label −1, image 0.
        assert.equal(lab[0], -1);
        assert.equal(im[0], 0);
        assert.ok(new Set(lab).has(2) && new Set(lab).has(1));
      }));

    it('builds the same sampling grid as affine_grid with θ_ij = A_ij · P_j / S_i', () =>
      tidy(() => {
        const A = affineMatrix([0.3, -0.5, 1.1], 1.2);
        const [S, P] = [[30, 41, 25], [16, 24, 20]];
        const reference = F.affineGrid(tensor(affineTheta(A, S, P), [1, 3, 4]), [1, 1, ...P], false);
        assert.ok(samplingGrid(A, S, P, 'cpu').sub(reference).abs().max().item() < 1e-5);
      }));

    it('crops without interpolation from floor(S/2) − floor(P/2) when neither rotation nor scaling is drawn', () =>
      tidy(() => {
        const img = tensor(Float32Array.from({ length: 7 * 7 }, (_, i) => i), [1, 7, 7]);
        const out = spatialTransform(img, zeros([1, 7, 7], { dtype: 'int16' }), [4, 4], null, 1);
        // start = 3 − 2 = 1 on both axes
        assert.deepEqual(f32(out.img).slice(0, 4), [8, 9, 10, 11]);
      }));

    it('mirrors image and segmentation along the same axes', () =>
      tidy(() => {
        const img = tensor([1, 2, 3, 4, 5, 6], [1, 2, 3]);
        assert.deepEqual(f32(mirror(img, [1])), [3, 2, 1, 6, 5, 4]);
        assert.deepEqual(f32(mirror(img, [0, 1])), [6, 5, 4, 3, 2, 1]);
      }));

    it('resizes nearest-exact as PyTorch: index floor((i + 0.5) · in/out)', () =>
      tidy(() => {
        assert.deepEqual(nearestExactIndices(8, 4), [1, 3, 5, 7]);
        assert.deepEqual(nearestExactIndices(5, 2), [1, 3]);
        assert.deepEqual(nearestExactIndices(3, 6), [0, 0, 1, 1, 2, 2]);
        const t = tensor(Float32Array.from({ length: 16 }, (_, i) => i), [1, 4, 4]);
        assert.deepEqual(f32(resizeNearestExact(t, [2, 2])), [5, 7, 13, 15]);
      }));
  });

  describe('intensity transforms', () => {
    it('adds Gaussian noise with the drawn standard deviation', () =>
      tidy(() => {
        const s = stats(f32(gaussianNoise(zeros([2, 32, 32, 32]), 0.07)));
        assert.ok(Math.abs(s.mean) < 0.002 && Math.abs(s.sd - 0.07) < 0.002, JSON.stringify(s));
      }));

    it('blurs with nnU-Net kernel sizes (nearest odd to 6σ + 0.5) and keeps constants constant', () =>
      tidy(() => {
        assert.equal(gaussianKernel(0.5).length, 3);
        assert.equal(gaussianKernel(1).length, 7);
        assert.ok(Math.abs(gaussianKernel(0.8).reduce((a, b) => a + b, 0) - 1) < 1e-6);
        const x = zeros([2, 6, 7, 8]).add(3);
        const out = gaussianBlur(x, [1], [[1, 0.5, 0.7]]);
        assert.ok(f32(out).every((v) => Math.abs(v - 3) < 1e-5));
        const spike = tensor(Float32Array.from({ length: 9 * 9 }, (_, i) => (i === 40 ? 1 : 0)), [1, 9, 9]);
        const blurred = f32(gaussianBlur(spike, [0], [[1, 1]]));
        assert.ok(blurred[40] < 0.2 && Math.abs(blurred.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      }));

    it('draws brightness factors in [0.75, 1.25], half of them below 1, and multiplies by them', () =>
      tidy(() => {
        const rng = new DecisionRng(7);
        const f = Array.from({ length: 2000 }, () => rng.bgContrast(0.75, 1.25));
        assert.ok(f.every((v) => v >= 0.75 && v < 1.25));
        const below = f.filter((v) => v < 1).length / f.length;
        assert.ok(below > 0.45 && below < 0.55, String(below));
        const out = f32(multiplicativeBrightness(zeros([2, 2, 2, 2]).add(2), [0.8, 1.2]));
        assert.ok(out.slice(0, 8).every((v) => Math.abs(v - 1.6) < 1e-6) && out.slice(8).every((v) => Math.abs(v - 2.4) < 1e-6));
      }));

    it('changes contrast around the mean and preserves each channel range', () =>
      tidy(() => {
        const x = rand([2, 10, 10, 10]);
        const before = [stats(f32(x.narrow(0, 0, 1))), stats(f32(x.narrow(0, 1, 1)))];
        const out = contrast(x, [0.75, 1.25]);
        const after = [stats(f32(out.narrow(0, 0, 1))), stats(f32(out.narrow(0, 1, 1)))];
        assert.ok(Math.abs(after[0].mean - before[0].mean) < 1e-5 && Math.abs(after[0].sd / before[0].sd - 0.75) < 1e-4);
        assert.ok(after[1].sd > before[1].sd * 1.1);
        after.forEach((a, c) => assert.ok(a.min >= before[c].min - 1e-6 && a.max <= before[c].max + 1e-6));
      }));

    it('keeps mean and std with retain stats, for gamma and inverted gamma', () =>
      tidy(() => {
        const x = rand([1, 12, 12, 12]).pow(2).mul(3).sub(1);
        const s0 = stats(f32(x));
        for (const invert of [false, true]) {
          const out = gamma(x, [1.45], invert);
          const s = stats(f32(out));
          assert.ok(Math.abs(s.mean - s0.mean) < 1e-4 && Math.abs(s.sd - s0.sd) < 1e-4, JSON.stringify({ s, s0 }));
          assert.ok(f32(out).some((v, i) => Math.abs(v - f32(x)[i]) > 1e-3), 'gamma changed the values');
        }
      }));

    it('simulates low resolution in place of the chosen channels, keeping the shape', () =>
      tidy(() => {
        const x = rand([2, 10, 12, 14]);
        const out = simulateLowResolution(x, [1], [0.5], []);
        assert.deepEqual(out.shape, [2, 10, 12, 14]);
        assert.deepEqual(f32(out.narrow(0, 0, 1)), f32(x.narrow(0, 0, 1)));
        assert.ok(stats(f32(out.narrow(0, 1, 1))).sd < stats(f32(x.narrow(0, 1, 1))).sd);
        // dummy-2D: axis 0 excluded; an image constant in-plane is untouched.
        const layers = tensor(Float32Array.from({ length: 4 * 6 * 6 }, (_, i) => Math.floor(i / 36)), [1, 4, 6, 6]);
        assert.deepEqual(f32(simulateLowResolution(layers, [0], [0.5], [0])), f32(layers));
      }));
  });

  describe('label-side transforms', () => {
    it('zeroes masked channels outside the nonzero region (seg < 0)', () =>
      tidy(() => {
        const img = zeros([2, 1, 2, 2]).add(5);
        const seg = tensor(new Int16Array([-1, 0, 1, -1]), [1, 1, 2, 2]);
        assert.deepEqual(f32(maskImage(img, seg, [1])), [5, 5, 5, 5, 0, 5, 5, 0]);
      }));

    it('converts labels to region channels with the ignore label as the last channel', () =>
      tidy(() => {
        const seg = tensor(new Int16Array([0, 1, 2, 3]), [1, 1, 2, 2]);
        const regions = segToRegions(seg, [[1, 2], [2], [3]]);
        assert.deepEqual(regions.shape, [3, 1, 2, 2]);
        assert.deepEqual(f32(regions), [0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
      }));

    it('moves the previous stage into one-hot image channels of the foreground labels', () =>
      tidy(() => {
        const img = zeros([1, 1, 1, 4]);
        const seg = tensor(new Int16Array([0, 1, 2, 0, 0, 2, 1, 0]), [2, 1, 1, 4]);
        const out = appendPreviousStageOneHot(img, seg, [1, 2]);
        assert.deepEqual(out.seg.shape, [1, 1, 1, 4]);
        assert.deepEqual(f32(out.img), [0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0]);
      }));

    it('dilates, erodes, opens and closes with a ball; added voxels leave the other channels', () =>
      tidy(() => {
        assert.equal(ballKernel(1, 3).data.reduce((a, b) => a + b, 0), 7);
        assert.equal(ballKernel(1.5, 2).data.reduce((a, b) => a + b, 0), 9);
        const n = 9;
        const dot = tensor(Float32Array.from({ length: n ** 3 }, (_, i) => (i === (4 * n + 4) * n + 4 ? 1 : 0)), [1, n, n, n]);
        assert.equal(f32(binaryOperator(dot, 'dilation', 1)).reduce((a, b) => a + b, 0), 7);
        assert.equal(f32(binaryOperator(dot, 'opening', 1)).reduce((a, b) => a + b, 0), 0);
        const cube = tensor(Float32Array.from({ length: n ** 3 }, (_, i) => {
          const [x, y, z] = [Math.floor(i / 81), Math.floor(i / 9) % 9, i % 9];
          return x >= 2 && x < 7 && y >= 2 && y < 7 && z >= 2 && z < 7 ? 1 : 0;
        }), [1, n, n, n]);
        assert.equal(f32(binaryOperator(cube, 'erosion', 1)).reduce((a, b) => a + b, 0), 27);
        assert.equal(f32(binaryOperator(cube, 'closing', 1)).reduce((a, b) => a + b, 0), 125);
        const img = tensor([...f32(dot), ...f32(dot.neg().add(1))], [2, n, n, n]);
        const out = applyBinaryOperators(img, [0, 1], [{ channel: 0, op: 'dilation', radius: 1 }]);
        const [a, b] = [f32(out.narrow(0, 0, 1)), f32(out.narrow(0, 1, 1))];
        assert.ok(a.every((v, i) => v + b[i] === 1), 'channels stay a partition');
      }));

    it('removes one small connected component of a one-hot channel', () =>
      tidy(() => {
        const v = new Float32Array(10 * 10);
        v[0] = v[1] = 1; // component of 2
        v[55] = 1; // component of 1
        const out = removeRandomComponents(tensor(v, [1, 10, 10]), [0], () => 0);
        assert.equal(f32(out).reduce((a, b) => a + b, 0), 1);
      }));
  });

  describe('pipelines', () => {
    const labels = new LabelManager({ background: 0, a: 1, b: 2 });
    const options = {
      folder: '', caseIds: ['x'], batchSize: 2, labels, device: 'cpu' as const, mirrorAxes: [0, 1, 2],
      dummy2d: false, rotationRange: [-Math.PI / 6, Math.PI / 6] as [number, number],
    };

    it('produces one target per deep-supervision scale for strides [[1,1,1],[1,2,2],[2,2,2],[2,2,2]]', () =>
      tidy(() => {
        const plan = planPipeline({ ...options, patchSize: [16, 24, 24], stageStrides: [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]], mode: 'train' });
        assert.deepEqual(plan.sample.targetShapes, [[16, 24, 24], [16, 12, 12], [8, 6, 6]]);
        const { seg, img } = blobs(plan.loaded3d);
        const out = trainingSample(tensor(img, [1, ...plan.loaded3d]), tensor(seg, [1, ...plan.loaded3d]), plan.sample, new DecisionRng(1));
        assert.deepEqual(out.img.shape, [1, 16, 24, 24]);
        assert.deepEqual(out.targets.map((t) => t.shape), [[1, 16, 24, 24], [1, 16, 12, 12], [1, 8, 6, 6]]);
        assert.ok(out.targets.every((t) => t.dtype === 'float32'));
      }));

    it('keeps image and labels aligned through every training transform (many seeds)', () => {
      const plan = planPipeline({ ...options, patchSize: [20, 20, 20], stageStrides: null, mode: 'train' });
      const { seg, img } = blobs(plan.loaded3d);
      let checked = 0;
      for (let s = 0; s < 30; s++) {
        tidy(() => {
          const out = trainingSample(tensor(img, [1, ...plan.loaded3d]), tensor(seg, [1, ...plan.loaded3d]), plan.sample, new DecisionRng(s));
          const im = f32(out.img), lab = f32(out.targets[0]);
          const mean = (l: number) => stats(im.filter((_, i) => lab[i] === l)).mean;
          assert.ok(lab.every((l) => l === 0 || l === 1 || l === 2), 'labels ⊆ {0, 1, 2} after −1 → 0');
          if (lab.includes(1) && lab.includes(2) && lab.includes(0)) {
            assert.ok(mean(2) > mean(1) && mean(1) > mean(0), `seed ${s}: ${mean(0)} ${mean(1)} ${mean(2)}`);
            checked++;
          }
        });
      }
      assert.ok(checked > 10, `checked ${checked}`);
    });

    it('dummy-2D and 2D samples come out at the final patch', () =>
      tidy(() => {
        const rng = new DecisionRng(3);
        const d2 = planPipeline({ ...options, patchSize: [4, 20, 20], stageStrides: null, mode: 'train', dummy2d: true, rotationRange: [-Math.PI, Math.PI] });
        assert.deepEqual(d2.loaded3d, [4, 23, 23]);
        for (let i = 0; i < 5; i++) {
          const out = trainingSample(rand([2, ...d2.loaded3d]), zeros([1, ...d2.loaded3d], { dtype: 'int16' }).add(1), d2.sample, rng);
          assert.deepEqual(out.img.shape, [2, 4, 20, 20]);
        }
        const p2 = planPipeline({ ...options, patchSize: [20, 24], stageStrides: [[1, 1], [2, 2]], mode: 'train', mirrorAxes: [0, 1] });
        // 20·cos 30° + 24·sin 30° = 29.3 → /0.85 → 34; 24 stays the larger extent of axis 1 → 28
        assert.deepEqual(p2.loaded3d, [1, 34, 28]);
        const out = trainingSample(rand([1, 34, 28]), zeros([1, 34, 28], { dtype: 'int16' }), p2.sample, rng);
        assert.deepEqual(out.targets.map((t) => t.shape), [[1, 20, 24]]);
      }));

    it('validation only converts labels: −1 → 0, regions with the ignore channel', () =>
      tidy(() => {
        const regionLabels = new LabelManager({ background: 0, whole: [1, 2], core: 2, ignore: 3 }, [1, 2]);
        const plan = planPipeline({ ...options, labels: regionLabels, patchSize: [1, 2, 2], stageStrides: null, mode: 'val' });
        assert.deepEqual(plan.loaded3d, [1, 2, 2]);
        const img = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
        const out = validationSample(img, tensor(new Int16Array([-1, 1, 2, 3]), [1, 1, 2, 2]), plan.sample);
        assert.deepEqual(f32(out.img), [1, 2, 3, 4]);
        assert.deepEqual(f32(out.targets[0]), [0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
      }));
  });
});
