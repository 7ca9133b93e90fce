// Foreground location sampling: nnU-Net's count rule, numpy's RandomState(1234).choice draws, keys.
import assert from 'node:assert/strict';
import { choiceWithoutReplacement, classKey, sampleClassLocations, sampleCount } from '../../server/preprocessing/class-locations.js';
import { RandomState } from '../../server/util/mt19937.js';

describe('preprocessing/class-locations', () => {
  it('keeps max(min(10000, n), ceil(0.01 n)) locations per class', () => {
    assert.equal(sampleCount(1), 1);
    assert.equal(sampleCount(3551), 3551);
    assert.equal(sampleCount(10000), 10000);
    assert.equal(sampleCount(500000), 10000);
    assert.equal(sampleCount(2_000_000), 20000);
    assert.equal(sampleCount(1_000_001), 10001);
  });

  it('draws what numpy RandomState(1234).choice(n, k, replace=False) draws, call after call', () => {
    // np.random.RandomState(1234): choice(20, 5, False), choice(100000, 4, False), choice(3, 3, False)
    const rs = new RandomState(1234);
    assert.deepEqual(Array.from(choiceWithoutReplacement(rs, 20, 5)), [3, 13, 2, 16, 14]);
    assert.deepEqual(Array.from(choiceWithoutReplacement(rs, 100000, 4)), [27737, 90873, 16796, 16367]);
    assert.deepEqual(Array.from(choiceWithoutReplacement(rs, 3, 3)), [2, 0, 1]);
  });

  it('names labels and regions as nnU-Net prints its dict keys', () => {
    assert.equal(classKey(2), '2');
    assert.equal(classKey([1, 2]), '(1, 2)');
    assert.equal(classKey([3]), '(3,)');
    assert.equal(classKey([-1, 0, 1, 2]), '(-1, 0, 1, 2)');
  });

  it('returns (0, x, y, z) coordinates inside the class, an empty list for absent classes', () => {
    const shape = [3, 4, 5];
    const seg = new Int16Array(60);
    seg[1 * 20 + 2 * 5 + 3] = 2;
    seg[2 * 20 + 0 * 5 + 4] = 2;
    seg[0] = 1;
    seg[59] = -1;
    const locs = sampleClassLocations(seg, shape, [1, 2, 3, [1, 2]]);
    assert.deepEqual(locs['1'], [[0, 0, 0, 0]]);
    assert.deepEqual([...locs['2']].sort(), [[0, 1, 2, 3], [0, 2, 0, 4]]);
    assert.deepEqual(locs['3'], []);
    assert.equal(locs['(1, 2)'].length, 3);
    for (const [, x, y, z] of locs['(1, 2)']) assert.ok([1, 2].includes(seg[x * 20 + y * 5 + z]));
  });
});
