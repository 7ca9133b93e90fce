import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCrossvalSplits, loadOrCreateSplits, splitForFold } from '../../server/training/splits.js';
import { RandomState } from '../../server/util/mt19937.js';
import { HIPPOCAMPUS, pythonHas, runPython, SHARED, tempDir } from '../helpers.js';

describe('cross-validation splits', () => {
  it("reproduce nnU-Net's observed splits_final.json for 10 cases", () => {
    const observed = JSON.parse(readFileSync(join(SHARED, 'fixtures', 'observed', 'tiny_splits_final.json'), 'utf8'));
    const ids = Array.from({ length: 10 }, (_, i) => `case${String(i).padStart(3, '0')}`).reverse();
    assert.deepEqual(generateCrossvalSplits(ids), observed);
  });

  it("draw numpy's legacy RandomState stream (MT19937, shuffle, choice)", function () {
    if (!pythonHas('numpy')) this.skip();
    const ref = JSON.parse(
      runPython(`import numpy as np, json
out = {}
for n in [5, 10, 32, 40, 131, 484]:
    r = np.random.RandomState(12345); a = np.arange(n); r.shuffle(a); out['shuffle%d' % n] = a.tolist()
r = np.random.RandomState(12345 + 7); out['choice'] = r.choice(40, 32, replace=False).tolist()
print(json.dumps(out))`).toString(),
    ) as Record<string, number[]>;
    for (const n of [5, 10, 32, 40, 131, 484]) assert.deepEqual(new RandomState(12345).permutation(n), ref[`shuffle${n}`], `n = ${n}`);
    assert.deepEqual(new RandomState(12345 + 7).choiceWithoutReplacement(40, 32), ref.choice);
  });

  it('for the 40 Hippocampus cases, have the KFold fold sizes and cover every case exactly once as validation', () => {
    const ids = readdirSync(join(HIPPOCAMPUS, 'labelsTr')).map((f) => f.replace('.nii.gz', ''));
    const splits = generateCrossvalSplits(ids);
    assert.deepEqual(splits.map((s) => s.val.length), [8, 8, 8, 8, 8]);
    assert.deepEqual(splits.flatMap((s) => s.val).sort(), [...ids].sort());
    for (const s of splits) assert.equal(new Set([...s.train, ...s.val]).size, 40);
  });

  it('create splits_final.json once, honour a user file, and split folds beyond it 80:20 with seed 12345 + fold', async () => {
    const tmp = tempDir();
    try {
      const ids = Array.from({ length: 10 }, (_, i) => `c${i}`);
      const file = join(tmp.dir, 'splits_final.json');
      const made = await loadOrCreateSplits(file, ids);
      assert.equal(made.length, 5);
      writeFileSync(file, JSON.stringify([{ train: ['c0', 'c1'], val: ['c2'] }]));
      const user = await loadOrCreateSplits(file, ids);
      assert.deepEqual(splitForFold(user, 0, ids), { train: ['c0', 'c1'], val: ['c2'] });
      const extra = splitForFold(user, 3, ids);
      assert.equal(extra.train.length, 8);
      assert.equal(extra.val.length, 2);
      assert.deepEqual(splitForFold(user, 'all', ids).val.length, 10);
      assert.throws(() => splitForFold([{ train: ['x'], val: [] }], 0, ids), /not in the dataset: x/);
      writeFileSync(file, '[{"train": 1}]');
      await assert.rejects(loadOrCreateSplits(file, ids), /fold 0: must be/);
    } finally {
      tmp.cleanup();
    }
  });
});
