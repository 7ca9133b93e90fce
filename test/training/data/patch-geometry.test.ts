// Specification of the patch geometry of nnU-Net v2's data loader (REFERENCE §5.2, §5.4): the
// enlarged initial patch, get_bbox's bounds with Python floor division, forced-foreground
// positions, class choice and the ignore-label rule, deep-supervision scales and target shapes.
import assert from 'node:assert/strict';
import {
  annotatedClassesKey,
  asPseudo3d,
  bboxBounds,
  chooseBbox,
  deepSupervisionScales,
  getPatchSize,
  initialPatchSize,
  isForcedForeground,
  scaledShape,
} from '../../../server/training/data/patch-geometry.js';
import { DecisionRng } from '../../../server/training/data/rng.js';

const deg = (d: number) => (d / 180) * Math.PI;
const range = (d: number): [number, number] => [-deg(d), deg(d)];

describe('training/data/patch-geometry', () => {
  describe('initial patch (get_patch_size)', () => {
    it('enlarges 128³ with ±30° to 205³', () => {
      assert.deepEqual(initialPatchSize([128, 128, 128], range(30), false), [205, 205, 205]);
    });
    it('enlarges (80, 192, 160) with ±30° to (194, 289, 210)', () => {
      assert.deepEqual(initialPatchSize([80, 192, 160], range(30), false), [194, 289, 210]);
    });
    it('enlarges a 2D 512² patch with ±180° (capped at 90°) to 602²', () => {
      assert.deepEqual(initialPatchSize([512, 512], range(180), false), [602, 602]);
    });
    it('enlarges dummy-2D patches in-plane only: (·, 224, 224) → (·, 263, 263)', () => {
      assert.deepEqual(initialPatchSize([20, 224, 224], range(180), true), [20, 263, 263]);
    });
    it('without rotation divides by the smallest scale only', () => {
      assert.deepEqual(getPatchSize([85, 170], 0, 0, 0, [0.85, 1.25]), [100, 200]);
    });
    it('represents 2D patches as one slice of a pseudo-3D patch', () => {
      assert.deepEqual(asPseudo3d([64, 48]), [1, 64, 48]);
      assert.deepEqual(asPseudo3d([8, 64, 48]), [8, 64, 48]);
    });
  });

  describe('bounding box (get_bbox)', () => {
    it('takes lb = (−need_to_pad) // 2 and ub = shape + n // 2 + n % 2 − loaded', () => {
      // need_to_pad 9 (odd): lb = −5, ub = 40 + 4 + 1 − 41 = 4
      assert.deepEqual(bboxBounds([40], [41], [32]), { lb: [-5], ub: [4] });
      // need_to_pad 10: lb = −5, ub = 50 + 5 + 0 − 42 = 13
      assert.deepEqual(bboxBounds([50], [42], [32]), { lb: [-5], ub: [13] });
    });
    it('raises need_to_pad so that a small image still fits the loaded patch', () => {
      // shape 20 + 9 < 41 → need_to_pad = 21: lb = −11, ub = 20 + 10 + 1 − 41 = −10
      assert.deepEqual(bboxBounds([20], [41], [32]), { lb: [-11], ub: [-10] });
    });
    it('keeps every random start within [lb, ub] and reaches both ends', () => {
      const rng = new DecisionRng(1);
      const seen = new Set<number>();
      for (let i = 0; i < 400; i++) {
        const { start } = chooseBbox([40, 1, 50], [41, 1, 42], [32, 1, 32], false, undefined, null, rng);
        assert.ok(start[0] >= -5 && start[0] <= 4, String(start));
        assert.equal(start[1], 0);
        assert.ok(start[2] >= -5 && start[2] <= 13, String(start));
        seen.add(start[0]);
      }
      assert.ok(seen.has(-5) && seen.has(4));
    });
    it('centres forced samples on a stored voxel of a non-empty class, clamped at lb only', () => {
      const rng = new DecisionRng(2);
      const locations = { '1': [], '2': [[0, 30, 2, 45]] };
      const { start, selectedClass } = chooseBbox([40, 40, 50], [41, 41, 42], [32, 32, 32], true, locations, null, rng);
      assert.equal(selectedClass, '2');
      // v − loaded // 2 = 30 − 20, 2 − 20 → lb −5, 45 − 21 (beyond ub 13: allowed, padded)
      assert.deepEqual(start, [10, -5, 24]);
    });
    it('chooses uniformly among the non-empty classes, not the annotated-voxels key', () => {
      const rng = new DecisionRng(3);
      const ignoreKey = annotatedClassesKey([0, 1, 2]);
      assert.equal(ignoreKey, '(-1, 0, 1, 2)');
      const locations = { '1': [[0, 5, 5, 5]], '2': [[0, 6, 6, 6]], [ignoreKey]: [[0, 7, 7, 7]] };
      const counts: Record<string, number> = {};
      for (let i = 0; i < 600; i++) {
        const { selectedClass } = chooseBbox([20, 20, 20], [10, 10, 10], [10, 10, 10], true, locations, ignoreKey, rng);
        counts[String(selectedClass)] = (counts[String(selectedClass)] ?? 0) + 1;
      }
      assert.equal(counts[ignoreKey], undefined);
      assert.ok(counts['1'] > 240 && counts['2'] > 240, JSON.stringify(counts));
    });
    it('centres non-forced samples of ignore-label datasets on annotated voxels', () => {
      const rng = new DecisionRng(4);
      const ignoreKey = annotatedClassesKey([0, 1]);
      const locations = { '1': [[0, 1, 1, 1]], [ignoreKey]: [[0, 15, 15, 15]] };
      const { start, selectedClass } = chooseBbox([20, 20, 20], [10, 10, 10], [10, 10, 10], false, locations, ignoreKey, rng);
      assert.equal(selectedClass, ignoreKey);
      assert.deepEqual(start, [10, 10, 10]);
    });
    it('falls back to a random start when a forced case has no foreground', () => {
      const rng = new DecisionRng(5);
      const { selectedClass } = chooseBbox([20, 20, 20], [10, 10, 10], [10, 10, 10], true, { '1': [] }, null, rng);
      assert.equal(selectedClass, null);
    });
  });

  it('forces the last B − round(B · 0.67) samples of a batch', () => {
    const forced = (b: number) => Array.from({ length: b }, (_, j) => isForcedForeground(j, b, 0.33));
    assert.deepEqual(forced(2), [false, true]);
    assert.deepEqual(forced(1), [false]);
    assert.deepEqual(forced(4), [false, false, false, true]);
    assert.deepEqual(forced(12), [...new Array(8).fill(false), ...new Array(4).fill(true)]);
  });

  it('derives deep-supervision scales and target shapes from the stage strides', () => {
    const scales = deepSupervisionScales([[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]]);
    assert.deepEqual(scales, [[1, 1, 1], [1, 0.5, 0.5], [0.5, 0.25, 0.25]]);
    assert.deepEqual(scales.map((s) => scaledShape([40, 56, 40], s)), [[40, 56, 40], [40, 28, 20], [20, 14, 10]]);
    // Python round: 5 · 0.5 = 2.5 → 2, 7 · 0.5 = 3.5 → 4
    assert.deepEqual(scaledShape([5, 7], [0.5, 0.5]), [2, 4]);
  });
});
