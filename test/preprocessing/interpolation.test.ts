// The one-axis kernels: cubic B-spline prefilter and weights worked by hand, linear and nearest
// sampling with scipy's grid_mode coordinates and edge clamping.
import assert from 'node:assert/strict';
import { CUBIC_GAIN, cubicWeights, gridCoordinate, planAxis, prefilterLine, resampleAxis } from '../../server/preprocessing/interpolation.js';

const close = (actual: ArrayLike<number>, expected: number[], tol = 1e-12) => {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i] - e) <= tol, `index ${i}: ${actual[i]} vs ${e}`));
};

function resample1d(x: number[], nOut: number, order: 0 | 1 | 3): Float64Array {
  const out = new Float64Array(nOut);
  resampleAxis(Float64Array.from(x), [x.length], 0, planAxis(x.length, nOut, order), out);
  return out;
}

describe('preprocessing/interpolation', () => {
  describe('cubic B-spline', () => {
    it('has the gain (1 - z)(1 - 1/z) = 6 for the pole sqrt(3) - 2', () => {
      assert.ok(Math.abs(CUBIC_GAIN - 6) < 1e-14);
    });

    it('prefilters [0, 6, 0] to the mirror-boundary coefficients [-6, 12, -6]', () => {
      // By hand: (c[k-1] + 4 c[k] + c[k+1]) / 6 = x[k] with c[-1] = c[1], c[3] = c[1] gives
      // c1 = -2 c0, c0 = c2 and c0 + 4 c1 + c2 = 36, so c0 = -6, c1 = 12.
      const c = Float64Array.from([0, 6, 0]);
      prefilterLine(c, 3);
      close(c, [-6, 12, -6]);
    });

    it('prefilters [0, 6] to [-6, 12]', () => {
      // (4 c0 + 2 c1) / 6 = 0 and (2 c0 + 4 c1) / 6 = 6.
      const c = Float64Array.from([0, 6]);
      prefilterLine(c, 2);
      close(c, [-6, 12]);
    });

    it('has weights 1/6, 2/3, 1/6, 0 at a knot and 1/48, 23/48, 23/48, 1/48 half-way', () => {
      const w = new Float64Array(4);
      cubicWeights(7, w);
      close(w, [1 / 6, 2 / 3, 1 / 6, 0], 1e-15);
      cubicWeights(2.5, w);
      close(w, [1 / 48, 23 / 48, 23 / 48, 1 / 48], 1e-15);
    });

    it('evaluates the spline of [0, 6, 0] to 3 half-way and interpolates the samples', () => {
      // s(0.5) = (c[-1] + 23 c0 + 23 c1 + c2) / 48 = (12 - 138 + 276 - 6) / 48 = 3.
      const c = [12, -6, 12, -6, 12]; // c[-1..3] with the mirror extension
      const w = new Float64Array(4);
      cubicWeights(0.5, w);
      assert.ok(Math.abs(w[0] * c[0] + w[1] * c[1] + w[2] * c[2] + w[3] * c[3] - 3) < 1e-12);
      cubicWeights(1, w);
      assert.ok(Math.abs(w[0] * c[1] + w[1] * c[2] + w[2] * c[3] + w[3] * c[4] - 6) < 1e-12);
    });

    it('keeps a constant line constant at any zoom, including from a single sample', () => {
      close(resample1d([5, 5, 5, 5], 9, 3), new Array(9).fill(5));
      close(resample1d([2.5], 4, 3), new Array(4).fill(2.5));
    });

    it('reproduces the samples when the length does not change', () => {
      close(resample1d([1, -3, 8, 2, 0.5], 5, 3), [1, -3, 8, 2, 0.5], 1e-12);
    });
  });

  describe('coordinates', () => {
    it('align pixel centres as zoom(grid_mode=True): (k + 0.5) * n_in / n_out - 0.5', () => {
      assert.equal(gridCoordinate(0, 2, 4), -0.25);
      assert.equal(gridCoordinate(3, 2, 4), 1.25);
      assert.equal(gridCoordinate(1, 4, 2), 2.5);
    });
  });

  describe('linear', () => {
    it('upsamples [0, 4] by 2 to [0, 1, 3, 4] (edge clamped)', () => {
      close(resample1d([0, 4], 4, 1), [0, 1, 3, 4]);
    });

    it('downsamples [0, 1, 2, 3] by 2 to [0.5, 2.5]', () => {
      close(resample1d([0, 1, 2, 3], 2, 1), [0.5, 2.5]);
    });
  });

  describe('nearest', () => {
    it('rounds half-way coordinates up, as floor(c + 0.5)', () => {
      // coordinates -0.3, 0.1, 0.5, 0.9, 1.3 clamp to 0, 0.1, 0.5, 0.9, 1
      close(resample1d([10, 20], 5, 0), [10, 10, 20, 20, 20]);
    });
  });

  describe('strided axes', () => {
    it('give the same result as the contiguous axis', () => {
      const n0 = 6;
      const n1 = 2500; // a column tile holds 65536 / (6 + 24) = 2184 columns: two tiles, the second ragged
      const src = Float64Array.from({ length: n0 * n1 }, (_, i) => Math.sin(i * 0.7) * 10 + (i % 5));
      const plan = planAxis(n0, 9, 3);
      const strided = new Float64Array(9 * n1);
      resampleAxis(src, [n0, n1], 0, plan, strided);
      for (let j = 0; j < n1; j++) {
        const line = Array.from({ length: n0 }, (_, i) => src[i * n1 + j]);
        const expected = resample1d(line, 9, 3);
        for (let k = 0; k < 9; k++) assert.ok(Math.abs(strided[k * n1 + j] - expected[k]) < 1e-12);
      }
    });
  });
});
