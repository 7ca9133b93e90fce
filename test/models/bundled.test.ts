import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installBundledModels } from '../../server/models/bundled.js';
import { tempDir } from '../helpers.js';

function makeModel(root: string, dataset: string, model: string, content: string): void {
  const fold = join(root, dataset, model, 'fold_0');
  mkdirSync(fold, { recursive: true });
  writeFileSync(join(root, dataset, model, 'plans.json'), content);
  writeFileSync(join(fold, 'model.onnx'), content);
}

describe('bundled models', () => {
  it('copies missing models, keeps the ones present and never shadows another dataset with the same id', () => {
    const tmp = tempDir();
    try {
      const bundled = join(tmp.dir, 'bundled');
      const results = join(tmp.dir, 'results');
      makeModel(bundled, 'Dataset004_Hippocampus', 'nnUNetTrainer__nnUNetDemoPlans__3d_fullres', 'bundled');
      makeModel(bundled, 'Dataset005_Prostate', 'nnUNetTrainer__nnUNetPlans__2d', 'bundled');
      // The user has a different dataset 5 and their own version of the Hippocampus model folder.
      makeModel(results, 'Dataset005_Liver', 'nnUNetTrainer__nnUNetPlans__2d', 'user');

      const first = installBundledModels(bundled, results);
      assert.deepEqual(first.installed, ['Dataset004_Hippocampus/nnUNetTrainer__nnUNetDemoPlans__3d_fullres']);
      assert.equal(first.skipped.length, 1);
      assert.match(first.skipped[0].reason, /Dataset005_Liver with the same dataset id/);
      const copied = join(results, 'Dataset004_Hippocampus', 'nnUNetTrainer__nnUNetDemoPlans__3d_fullres');
      assert.equal(readFileSync(join(copied, 'fold_0', 'model.onnx'), 'utf8'), 'bundled');
      assert.equal(existsSync(join(results, 'Dataset005_Prostate')), false);
      assert.deepEqual(readdirSync(join(results, 'Dataset004_Hippocampus')), ['nnUNetTrainer__nnUNetDemoPlans__3d_fullres'], 'no temporary folder is left');

      // A model the user changed since is left as it is.
      writeFileSync(join(copied, 'plans.json'), 'retrained');
      const second = installBundledModels(bundled, results);
      assert.deepEqual(second.installed, []);
      assert.deepEqual(second.skipped.map((s) => s.reason).sort(), ['already in the repository', 'the repository already has Dataset005_Liver with the same dataset id']);
      assert.equal(readFileSync(join(copied, 'plans.json'), 'utf8'), 'retrained');
    } finally {
      tmp.cleanup();
    }
  });

  it('does nothing when the bundled folder does not exist', () => {
    const tmp = tempDir();
    try {
      assert.deepEqual(installBundledModels(join(tmp.dir, 'missing'), join(tmp.dir, 'results')), { installed: [], skipped: [] });
      assert.equal(existsSync(join(tmp.dir, 'results')), false);
    } finally {
      tmp.cleanup();
    }
  });
});
