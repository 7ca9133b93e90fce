import assert from 'node:assert/strict';
import { float16ToFloat32, float32ToFloat16 } from '../../server/io/npy.js';
import { gaussianImportanceMap, mirrorAxisSubsets, paddingToSize, roundToHalf, slidingWindowSteps } from '../../server/inference/sliding-window.js';
import { pythonHas, runPython } from '../helpers.js';

describe('sliding window geometry', () => {
  it("places tiles like nnU-Net (observed examples of REFERENCE §7.4)", () => {
    assert.deepEqual(slidingWindowSteps([110], [64]), [[0, 23, 46]]);
    assert.deepEqual(slidingWindowSteps([245, 512, 512], [80, 192, 160]), [
      [0, 33, 66, 99, 132, 165],
      [0, 80, 160, 240, 320],
      [0, 70, 141, 211, 282, 352],
    ]);
    assert.deepEqual(slidingWindowSteps([40, 56, 40], [40, 56, 40]), [[0], [0], [0]]);
    assert.throws(() => slidingWindowSteps([10], [20]), /smaller than the patch/);
  });

  it('pads centred with the odd voxel at the end', () => {
    assert.deepEqual(paddingToSize([35, 50, 36], [40, 56, 40]), [[2, 3], [3, 3], [2, 2]]);
    assert.deepEqual(paddingToSize([50], [40]), [[0, 0]]);
  });

  it('rounds to float16 exactly like an IEEE half conversion', () => {
    const values = Float32Array.from([0, 1, -1, 0.1, 3.14159, 65504, 65519, 65520, 1e-5, 5.96e-8, 2.9e-8, 1e-9, 10, 0.00335, 1 + 2 ** -11, 1 + 3 * 2 ** -11]);
    const viaBits = float16ToFloat32(float32ToFloat16(values));
    values.forEach((v, i) => assert.equal(roundToHalf(v), viaBits[i], `value ${v}`));
    for (let i = 0; i < 2000; i++) {
      const v = Math.fround((Math.random() - 0.5) * 2 ** (Math.random() * 40 - 25));
      assert.equal(roundToHalf(v), float16ToFloat32(float32ToFloat16(Float32Array.of(v)))[0], `value ${v}`);
    }
  });

  it('has the importance map of nnU-Net: max 10, edge-centre 10·e^-8 in fp16, min non-zero floor', () => {
    const g = gaussianImportanceMap([40, 56, 40]);
    assert.equal(Math.max(...g), 10);
    // centre of a face: one axis at its edge (offset 20 = 4σ for σ = 5)
    const at = (z: number, y: number, x: number) => g[(z * 56 + y) * 40 + x];
    assert.ok(Math.abs(at(0, 28, 20) - 10 * Math.exp(-8)) < 2e-5, `${at(0, 28, 20)}`);
    assert.ok(g.every((v) => v > 0));
  });

  it('equals scipy.ndimage.gaussian_filter of a delta, cast to float16', function () {
    if (!pythonHas('numpy', 'scipy')) this.skip();
    for (const patch of [[24, 32, 20], [40, 56, 40], [64, 48]]) {
      const ref = new Float32Array(
        new Float32Array(
          runPython(
            `import numpy as np, sys
from scipy.ndimage import gaussian_filter
p = ${JSON.stringify(patch)}
t = np.zeros(p); t[tuple(i // 2 for i in p)] = 1
g = gaussian_filter(t, [i / 8 for i in p], 0, mode='constant', cval=0)
g = (g / np.max(g) * 10).astype(np.float16)
g[g == 0] = np.min(g[g != 0])
sys.stdout.buffer.write(g.astype(np.float32).tobytes())`,
          ).buffer.slice(0),
        ),
      );
      const ours = gaussianImportanceMap(patch);
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - ref[i]) / Math.max(ref[i], 1e-3));
      assert.ok(worst < 2e-3, `patch ${patch}: worst relative difference ${worst}`);
    }
  });

  it('enumerates mirror subsets like itertools.combinations', () => {
    assert.deepEqual(mirrorAxisSubsets([0, 1, 2]), [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]);
    assert.deepEqual(mirrorAxisSubsets([]), []);
  });
});
