// The cascade's two ends (REFERENCE §5.10–5.11): a 3d_lowres fold's final validation writes the
// next stage's input (predicted_next_stage/3d_cascade_fullres/CASE.npy on that stage's grid), and a
// 3d_cascade_fullres fold trains and validates with one extra input channel per foreground label.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../../server/engine/checkpoint.js';
import { torchAvailable } from '../../server/engine/torch.js';
import { readNpy, writeNpy } from '../../server/io/npy.js';
import { trainFold, type FoldJobOptions } from '../../server/training/run-fold.js';
import { tempDir } from '../helpers.js';
import { makeTrainingFixture, type TrainingFixture } from './fixtures.js';

describe('training/cascade', function () {
  // Each test forks a fold process (tsx + libtorch start-up) and trains; the repo default of 60 s is tight on a busy machine.
  this.timeout(240_000);
  let fx: TrainingFixture;
  let cleanup = () => {};

  before(async function () {
    if (!torchAvailable()) {
      console.log('      libtorch is not available (server/native not built): cascade tests skipped');
      return this.skip();
    }
    const t = tempDir('nnunet-cascade-');
    cleanup = t.cleanup;
    fx = await makeTrainingFixture(t.dir, { id: 953, cascade: true });
  });
  after(() => cleanup());

  const tiny = (configuration: string): FoldJobOptions => ({
    dataset: '953',
    configuration,
    fold: 0,
    env: fx.env,
    seed: 2,
    numThreads: 1,
    overrides: { numEpochs: 1, numIterationsPerEpoch: 1, numValIterationsPerEpoch: 1 },
  });

  it('3d_lowres validation writes the segmentations 3d_cascade_fullres trains on, and the cascade trains on them', async () => {
    const lowres = await trainFold(tiny('3d_lowres'));
    assert.equal(lowres.status, 'finished', lowres.message);
    const next = join(fx.results, 'nnUNetTrainer__nnUNetPlans__3d_lowres', 'predicted_next_stage', '3d_cascade_fullres');
    const written = readdirSync(next).sort();
    assert.deepEqual(written, ['case_000.npy', 'case_007.npy'], 'one per validation case of the fold');
    const seg = await readNpy(join(next, 'case_000.npy'));
    const data = await readNpy(join(fx.preprocessed, 'nnUNetPlans_3d_fullres', 'case_000.npy'));
    assert.equal(seg.dtype, 'uint8');
    assert.deepEqual(seg.shape, data.shape.slice(1), "on the next stage's preprocessed grid");

    // The other folds of 3d_lowres would predict the remaining cases; stand in with the reference.
    for (const f of readdirSync(join(fx.preprocessed, 'nnUNetPlans_3d_fullres')).filter((f) => f.endsWith('_seg.npy'))) {
      const id = f.replace('_seg.npy', '');
      if (existsSync(join(next, `${id}.npy`))) continue;
      const ref = await readNpy(join(fx.preprocessed, 'nnUNetPlans_3d_fullres', f));
      await writeNpy(join(next, `${id}.npy`), { dtype: 'uint8', shape: ref.shape.slice(1), data: Uint8Array.from(ref.data, (v) => Math.max(0, v)) });
    }
    const cascade = await trainFold(tiny('3d_cascade_fullres'));
    assert.equal(cascade.status, 'finished', cascade.message);
    const folder = join(fx.results, 'nnUNetTrainer__nnUNetPlans__3d_cascade_fullres', 'fold_0');
    const ck = await loadCheckpoint(join(folder, 'checkpoint_final'));
    assert.deepEqual(ck.weights.get('encoder.stages.0.0.convs.0.conv.weight')?.shape, [4, 2, 3, 3, 3], 'image channel + one foreground label');
    assert.ok(existsSync(join(folder, 'validation', 'summary.json')));
  });
});
