// resample_data_or_seg_to_shape: new shapes, the separate-z rule, exact small cases, and
// cross-checks against scipy.ndimage driven the way nnU-Net drives it (small random volumes).
import assert from 'node:assert/strict';
import {
  computeNewShape,
  determineSeparateZ,
  pythonRound,
  resampleDataToShape,
  resampleLogitsToShape,
  type ResampleOptions,
} from '../../server/preprocessing/resampling.js';
import { resampleSegToShape } from '../../server/preprocessing/segmentation-resampling.js';
import { mulberry32 } from '../fixtures/synthetic.js';
import { pythonReference, scipyUnavailable } from './python.js';

const CUBIC: ResampleOptions = { order: 3, orderZ: 0 };
const LINEAR_SEG: ResampleOptions = { order: 1, orderZ: 0 };
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

describe('preprocessing/resampling', () => {
  describe('computeNewShape', () => {
    it('is int(round(old_spacing / new_spacing * old_shape)) with halves to even', () => {
      assert.deepEqual(computeNewShape([200, 512, 512], [2.5, 0.7, 0.7], [1, 1, 1]), [500, 358, 358]);
      // 0.5 / 1 * 5 = 2.5 -> 2 and 0.5 / 1 * 7 = 3.5 -> 4 (Python's round)
      assert.deepEqual(computeNewShape([5, 7, 10], [0.5, 0.5, 1], [1, 1, 1]), [2, 4, 10]);
      assert.deepEqual(computeNewShape([36, 59, 52], [2.233741521835327, 0.8155052065849304, 0.9264450669288635], [3.2985663414001465, 0.8158479630947113, 0.8278990685939789]), [24, 59, 58]);
    });

    it('rounds like Python', () => {
      assert.deepEqual([0.5, 1.5, 2.5, -0.5, 51.5, 2.4999, 2.5001].map(pythonRound), [0, 2, 2, 0, 52, 2, 3]);
    });

    it('refuses zero, negative and NaN spacings with a clear message', () => {
      assert.throws(() => computeNewShape([4, 4, 4], [0, 1, 1], [1, 1, 1]), /spacing .* finite and positive/);
      assert.throws(() => computeNewShape([4, 4, 4], [1, 1, 1], [1, NaN, 1]), /spacing .* finite and positive/);
      assert.throws(() => computeNewShape([4, 4, 4], [1, -1, 1], [1, 1, 1]), /finite and positive/);
    });

    it('refuses a shape that would vanish', () => {
      assert.throws(() => computeNewShape([1, 8, 8], [0.3, 1, 1], [1, 1, 1]), /thinner than half a target voxel/);
    });
  });

  describe('determineSeparateZ', () => {
    it('uses the current spacing first, then the target spacing, threshold 3', () => {
      assert.deepEqual(determineSeparateZ(null, [3.5, 1, 1], [1, 1, 1]), { separateZ: true, axis: 0 });
      assert.deepEqual(determineSeparateZ(null, [1, 1, 1], [1, 3.1, 1]), { separateZ: true, axis: 1 });
      assert.deepEqual(determineSeparateZ(null, [3, 1, 1], [1, 1, 1]), { separateZ: false, axis: undefined });
      assert.deepEqual(determineSeparateZ(null, [1, 1, 5], [1, 1, 1]), { separateZ: true, axis: 2 });
    });

    it('gives up when two axes share the coarsest spacing', () => {
      assert.deepEqual(determineSeparateZ(null, [0.24, 1.25, 1.25], [1, 1, 1]), { separateZ: false, axis: undefined });
    });

    it('honours force_separate_z', () => {
      assert.deepEqual(determineSeparateZ(true, [2, 1, 1], [1, 1, 1]), { separateZ: true, axis: 0 });
      assert.deepEqual(determineSeparateZ(false, [9, 1, 1], [1, 1, 1]), { separateZ: false, axis: undefined });
    });
  });

  describe('exact cases', () => {
    it('returns the input itself when the shape does not change', () => {
      const data = new Float32Array(8).fill(1);
      assert.equal(resampleDataToShape(data, 1, [2, 2, 2], [2, 2, 2], [1, 1, 1], [1, 1, 1], CUBIC), data);
    });

    it('interpolates logits linearly with edge clamping', () => {
      const out = resampleLogitsToShape(Float32Array.from([0, 4, 10, 20]), 2, [1, 1, 2], [1, 1, 4], [1, 1, 1], [1, 1, 0.5], { order: 1, order_z: 0 });
      assert.deepEqual(Array.from(out), [0, 1, 3, 4, 10, 12.5, 17.5, 20]);
    });

    it('clips cubic overshoot to the input range', () => {
      const out = resampleDataToShape(Float32Array.from([0, 0, 0, 10, 10, 10]), 1, [1, 1, 6], [1, 1, 20], [1, 1, 1], [1, 1, 1], CUBIC);
      assert.equal(Math.min(...out), 0);
      assert.equal(Math.max(...out), 10);
    });

    it('resamples a segmentation label-wise with >= 0.5', () => {
      const out = resampleSegToShape(Int16Array.from([0, 0, 1, 1]), [1, 1, 4], [1, 1, 8], [1, 1, 1], [1, 1, 1], LINEAR_SEG);
      assert.deepEqual(Array.from(out), [0, 0, 0, 0, 1, 1, 1, 1]);
    });

    it('lets later (higher) labels overwrite earlier ones on ties', () => {
      // 2 -> 3: the middle sample sits half-way, both masks are exactly 0.5, 0 wins over -1.
      const out = resampleSegToShape(Int16Array.from([-1, 0]), [1, 1, 2], [1, 1, 3], [1, 1, 1], [1, 1, 1], LINEAR_SEG);
      assert.deepEqual(Array.from(out), [-1, 0, 0]);
    });

    it('resamples an image one voxel thick without NaN', () => {
      const data = Float32Array.from({ length: 16 }, (_, i) => i);
      const out = resampleDataToShape(data, 1, [1, 4, 4], [5, 4, 4], [5, 1, 1], [1, 1, 1], CUBIC);
      assert.equal(out.length, 80);
      for (let z = 0; z < 5; z++) assert.deepEqual(Array.from(out.subarray(z * 16, z * 16 + 16)), Array.from(data));
    });
  });

  describe('against scipy.ndimage', function () {
    before(function () {
      const why = scipyUnavailable();
      if (why) {
        console.log(`      skipped: ${why}`);
        this.skip();
      }
    });

    const rnd = mulberry32(42);
    const worst: Record<string, number> = {};
    after(() => {
      if (Object.keys(worst).length > 0) console.log(`      max |ours - scipy| / range: ${JSON.stringify(worst)}`);
    });

    function checkData(name: string, shape: number[], newShape: number[], spacing: number[], newSpacing: number[], options: ResampleOptions) {
      it(`${name}: image ${shape.join('x')} -> ${newShape.join('x')}`, () => {
        const channels = 2;
        const data = Float32Array.from({ length: channels * prod(shape) }, () => rnd() * 300 - 100);
        const ours = resampleDataToShape(data, channels, shape, newShape, spacing, newSpacing, options);
        const sep = determineSeparateZ(options.forceSeparateZ, spacing, newSpacing);
        const ref = pythonReference(
          { dtype: 'float32', shape: [channels, ...shape], data },
          { new_shape: newShape, is_seg: false, axis: sep.separateZ ? (sep.axis as number) : null, order: options.order, order_z: options.orderZ },
        );
        assert.deepEqual(ref.shape, [channels, ...newShape]);
        let diff = 0;
        for (let i = 0; i < ours.length; i++) diff = Math.max(diff, Math.abs(ours[i] - (ref.data as Float32Array)[i]));
        worst[name] = Math.max(worst[name] ?? 0, diff / 400);
        assert.ok(diff / 400 < 1e-6, `max abs diff ${diff}`);
      });
    }

    function checkSeg(name: string, shape: number[], newShape: number[], spacing: number[], newSpacing: number[], options: ResampleOptions) {
      it(`${name}: segmentation ${shape.join('x')} -> ${newShape.join('x')}`, () => {
        // Blocky labels (-1..3) so that interpolated masks cross 0.5 in many places.
        const seg = Int16Array.from({ length: prod(shape) }, (_, i) => (Math.floor(i / 3) % 5) - 1 + (rnd() < 0.2 ? 1 : 0));
        const ours = resampleSegToShape(seg, shape, newShape, spacing, newSpacing, options);
        const sep = determineSeparateZ(options.forceSeparateZ, spacing, newSpacing);
        const ref = pythonReference(
          { dtype: 'int16', shape: [1, ...shape], data: seg },
          { new_shape: newShape, is_seg: true, axis: sep.separateZ ? (sep.axis as number) : null, order: options.order, order_z: options.orderZ },
        );
        let mismatches = 0;
        for (let i = 0; i < ours.length; i++) if (ours[i] !== ref.data[i]) mismatches++;
        assert.equal(mismatches, 0, `${mismatches} of ${ours.length} voxels differ`);
      });
    }

    checkData('cubic 3D', [7, 9, 11], [10, 5, 13], [1, 1, 1], [1, 1, 1], CUBIC);
    checkData('cubic, separate z on axis 0', [7, 9, 11], [15, 5, 13], [4, 1, 1], [1, 1, 1], CUBIC);
    checkData('cubic, separate z on axis 1', [9, 7, 11], [9, 12, 5], [1, 4, 1], [1, 1, 1], CUBIC);
    checkData('cubic, separate z on axis 2', [9, 11, 6], [5, 14, 10], [1, 1, 5], [1.5, 1, 3], CUBIC);
    checkData('cubic, separate z from the target spacing', [12, 10, 10], [3, 13, 7], [1, 1, 1], [4, 0.75, 1.4], CUBIC);
    checkData('cubic, tied coarse axes', [8, 10, 10], [9, 4, 4], [0.9, 4, 4], [0.8, 10, 10], CUBIC);
    checkData('cubic, pseudo-2D (1, X, Y)', [1, 13, 17], [1, 9, 21], [999, 1, 1], [999, 1.4, 0.8], CUBIC);
    checkData('cubic in plane, linear along z', [6, 9, 8], [11, 7, 8], [4, 1, 1], [1, 1, 1], { order: 3, orderZ: 1 });
    checkData('linear (probabilities)', [7, 9, 11], [10, 5, 13], [1, 1, 1], [1, 1, 1], { order: 1, orderZ: 0 });
    checkData('linear, separate z', [7, 9, 11], [15, 5, 13], [4, 1, 1], [1, 1, 1], { order: 1, orderZ: 0 });
    checkSeg('label-wise linear 3D', [7, 9, 11], [10, 5, 13], [1, 1, 1], [1, 1, 1], LINEAR_SEG);
    checkSeg('label-wise linear, separate z', [7, 9, 11], [15, 5, 13], [4, 1, 1], [1, 1, 1], LINEAR_SEG);
    checkSeg('label-wise linear, exact half-way ties', [6, 6, 8], [3, 12, 4], [1, 1, 1], [1, 1, 1], LINEAR_SEG);
    checkSeg('label-wise linear, separate z on axis 2', [9, 11, 6], [5, 14, 10], [1, 1, 5], [1.5, 1, 3], LINEAR_SEG);
    checkSeg('label-wise, linear along z', [6, 9, 8], [11, 7, 8], [4, 1, 1], [1, 1, 1], { order: 1, orderZ: 1 });
    checkSeg('nearest segmentation', [7, 9, 11], [10, 5, 13], [1, 1, 1], [1, 1, 1], { order: 0, orderZ: 0 });
  });
});
