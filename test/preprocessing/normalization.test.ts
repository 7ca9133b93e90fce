// Normalisation schemes and the channel name mapping, with numpy's float32 results as the oracle
// where rounding matters.
import assert from 'node:assert/strict';
import {
  normalizationSchemeForChannel,
  normalizeChannel,
  parseNormalizationScheme,
  supportsMaskForNorm,
} from '../../server/preprocessing/normalization.js';
import { mulberry32 } from '../fixtures/synthetic.js';
import { pythonEval, scipyUnavailable } from './python.js';

const CT_PROPS = { max: 394, mean: 68.59333038330078, median: 60, min: -18, percentile_00_5: 15, percentile_99_5: 265, std: 43.84037399291992 };
const f32 = Math.fround;

describe('preprocessing/normalization', () => {
  it('maps channel names case-insensitively, defaulting to z-score', () => {
    const cases: [string, string][] = [
      ['CT', 'CTNormalization'],
      ['ct', 'CTNormalization'],
      ['noNorm', 'NoNormalization'],
      ['NONORM', 'NoNormalization'],
      ['zscore', 'ZScoreNormalization'],
      ['rescale_to_0_1', 'RescaleTo01Normalization'],
      ['RGB_to_0_1', 'RGBTo01Normalization'],
      ['T1', 'ZScoreNormalization'],
      ['MRI', 'ZScoreNormalization'],
      ['rescale_0_1', 'ZScoreNormalization'],
    ];
    for (const [name, scheme] of cases) assert.equal(normalizationSchemeForChannel(name), scheme, name);
    assert.ok(supportsMaskForNorm('ZScoreNormalization'));
    assert.ok(!supportsMaskForNorm('CTNormalization'));
    assert.throws(() => parseNormalizationScheme('CT2Normalization'), /unknown normalization scheme/);
  });

  it('z-scores with the population std', () => {
    const out = normalizeChannel(Float32Array.from([1, 2, 3, 4]), 'ZScoreNormalization');
    const std = Math.sqrt(1.25);
    assert.deepEqual(Array.from(out), [-1.5, -0.5, 0.5, 1.5].map((v) => f32(v / f32(std))));
  });

  it('z-scores only inside the mask when use_mask_for_norm, leaving the outside as it is', () => {
    const seg = Int16Array.from([-1, 0, 1, 0, -1]);
    const out = normalizeChannel(Float32Array.from([0, 2, 4, 6, 0]), 'ZScoreNormalization', { useMaskForNorm: true, seg });
    const std = f32(Math.sqrt(8 / 3));
    assert.deepEqual(Array.from(out), [0, f32(-2 / std), 0, f32(2 / std), 0]);
  });

  it('turns a constant channel into zeros, never NaN (std 0 -> 1e-8)', () => {
    for (const scheme of ['ZScoreNormalization', 'RescaleTo01Normalization'] as const) {
      const out = normalizeChannel(new Float32Array(10).fill(7.3), scheme);
      assert.ok(out.every((v) => v === 0), scheme);
    }
    const masked = normalizeChannel(new Float32Array(4).fill(3), 'ZScoreNormalization', { useMaskForNorm: true, seg: new Int16Array(4) });
    assert.ok(masked.every((v) => v === 0));
    // An empty mask leaves the image untouched.
    const empty = normalizeChannel(Float32Array.from([1, 2]), 'ZScoreNormalization', { useMaskForNorm: true, seg: Int16Array.from([-1, -1]) });
    assert.deepEqual(Array.from(empty), [1, 2]);
  });

  it('clips CT to the foreground percentiles, then applies the dataset mean and std in float32', () => {
    const out = normalizeChannel(Float32Array.from([-1000, 15, 100, 3000]), 'CTNormalization', { intensityProperties: CT_PROPS });
    const expect = (v: number) => f32(f32(v - f32(CT_PROPS.mean)) / f32(CT_PROPS.std));
    assert.deepEqual(Array.from(out), [expect(15), expect(15), expect(100), expect(265)]);
    assert.throws(() => normalizeChannel(new Float32Array(2), 'CTNormalization'), /intensity properties/);
  });

  it('rescales to [0, 1] and divides RGB by 255', () => {
    assert.deepEqual(Array.from(normalizeChannel(Float32Array.from([2, 4, 6]), 'RescaleTo01Normalization')), [0, 0.5, 1]);
    assert.deepEqual(Array.from(normalizeChannel(Float32Array.from([0, 51, 255]), 'RGBTo01Normalization')), [0, f32(0.2), 1]);
    assert.throws(() => normalizeChannel(Float32Array.from([0, 300]), 'RGBTo01Normalization'), /\[0, 255\]/);
  });

  it('keeps NoNormalization values as they are', () => {
    assert.deepEqual(Array.from(normalizeChannel(Float32Array.from([-3.5, 8]), 'NoNormalization')), [-3.5, 8]);
  });

  describe('against numpy float32', function () {
    before(function () {
      if (scipyUnavailable()) this.skip();
    });

    it('z-score and CT agree to one float32 ulp', () => {
      const rnd = mulberry32(7);
      const x = Float32Array.from({ length: 50000 }, () => rnd() * 500 - 100);
      const seg = Int16Array.from({ length: x.length }, () => (rnd() < 0.3 ? -1 : 0));
      const arrays = { x: { dtype: 'float32' as const, shape: [x.length], data: x }, seg: { dtype: 'int16' as const, shape: [x.length], data: seg } };
      const ref = pythonEval(
        [
          'a = x.copy(); mean = a.mean(); std = a.std(); a -= mean; a /= max(std, 1e-8)',
          'b = x.copy(); m = seg >= 0; b[m] = (b[m] - b[m].mean()) / max(b[m].std(), 1e-8)',
          `c = x.copy(); np.clip(c, ${CT_PROPS.percentile_00_5}, ${CT_PROPS.percentile_99_5}, out=c); c -= ${CT_PROPS.mean}; c /= max(${CT_PROPS.std}, 1e-8)`,
          'out = np.stack([a, b, c]).astype(np.float32)',
        ].join('\n'),
        arrays,
      ).data as Float32Array;
      const ours = [
        normalizeChannel(x.slice(), 'ZScoreNormalization'),
        normalizeChannel(x.slice(), 'ZScoreNormalization', { useMaskForNorm: true, seg }),
        normalizeChannel(x.slice(), 'CTNormalization', { intensityProperties: CT_PROPS }),
      ];
      ours.forEach((o, k) => {
        for (let i = 0; i < o.length; i++) {
          const r = ref[k * x.length + i];
          assert.ok(Math.abs(o[i] - r) <= 2 ** -23 * Math.max(1, Math.abs(r)) * 2, `scheme ${k} voxel ${i}: ${o[i]} vs ${r}`);
        }
      });
    });
  });
});
