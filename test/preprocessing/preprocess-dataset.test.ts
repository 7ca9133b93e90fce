// preprocessDataset and `nnunet preprocess` on a copy of a fixture dataset: worker pool, output
// layout (numpy-readable .npy, JSON properties), gt_segmentations, skipped configurations.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from '../../client/args.js';
import { preprocessCommand } from '../../client/commands/preprocess.js';
import { readNpy } from '../../server/io/npy.js';
import { preprocessDataset, resolveNumProcesses, type PreprocessProgress } from '../../server/preprocessing/index.js';
import { SHARED, tempDir } from '../helpers.js';
import { PYTHON, scipyUnavailable } from './python.js';

const FIXTURE = join(SHARED, 'fixtures', 'nnunet_reference', 'preprocessing', 'Dataset903_Synth2ch');
const NAME = 'Dataset903_Synth2ch';

function setUp(): { env: NodeJS.ProcessEnv; preprocessed: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir('nnunet-preprocess-');
  const raw = join(dir, 'raw');
  const preprocessed = join(dir, 'preprocessed');
  cpSync(join(FIXTURE, 'raw'), join(raw, NAME), { recursive: true });
  mkdirSync(join(preprocessed, NAME), { recursive: true });
  cpSync(join(FIXTURE, 'nnUNetPlans.json'), join(preprocessed, NAME, 'nnUNetPlans.json'));
  const env = { nnUNet_raw: raw, nnUNet_preprocessed: preprocessed, nnUNet_results: join(dir, 'results') };
  return { env, preprocessed: join(preprocessed, NAME), cleanup };
}

describe('preprocessing/preprocess-dataset', function () {
  before(function () {
    if (!existsSync(FIXTURE)) this.skip();
  });

  it('resolves -np like nnU-Net', () => {
    assert.deepEqual(resolveNumProcesses(['2d', '3d_fullres', '3d_lowres', 'x']), [8, 4, 8, 4]);
    assert.deepEqual(resolveNumProcesses(['2d', '3d_fullres'], 3), [3, 3]);
    assert.deepEqual(resolveNumProcesses(['2d', '3d_fullres'], [1, 2]), [1, 2]);
    assert.throws(() => resolveNumProcesses(['2d', '3d_fullres'], [1, 2, 3]), /one value or one per configuration/);
  });

  it('preprocesses every case in a worker pool and matches the fixture', async () => {
    const { env, preprocessed, cleanup } = setUp();
    try {
      const progress: PreprocessProgress[] = [];
      const result = await preprocessDataset('903', ['3d_fullres', '3d_lowres'], 2, { env, onProgress: (p) => progress.push(p) });
      assert.deepEqual(result.skipped, ['3d_lowres']);
      assert.equal(result.configurations.length, 1);
      const folder = join(preprocessed, 'nnUNetPlans_3d_fullres');
      const ids = readdirSync(join(FIXTURE, 'raw', 'labelsTr')).map((f) => f.replace('.nii.gz', ''));
      assert.equal(progress.length, ids.length);
      assert.deepEqual(progress.map((p) => p.done).sort((a, b) => a - b), ids.map((_, i) => i + 1));
      for (const id of ids) {
        for (const suffix of ['.npy', '_seg.npy', '.json']) assert.ok(existsSync(join(folder, id + suffix)), id + suffix);
      }
      assert.ok(!readdirSync(folder).some((f) => f.endsWith('.tmp')), 'no temporary files left');
      // The fixture's cases come out as nnU-Net wrote them.
      const data = await readNpy(join(folder, 'synth2ch_000.npy'));
      const ref = await readNpy(join(FIXTURE, 'preprocessed', 'nnUNetPlans_3d_fullres', 'synth2ch_000_data.npy'));
      assert.deepEqual(data.shape, ref.shape);
      let worst = 0;
      for (let i = 0; i < data.data.length; i++) worst = Math.max(worst, Math.abs(data.data[i] - ref.data[i]));
      assert.ok(worst < 2e-6);
      const seg = await readNpy(join(folder, 'synth2ch_000_seg.npy'));
      assert.equal(seg.dtype, 'int16');
      assert.deepEqual(seg.data, (await readNpy(join(FIXTURE, 'preprocessed', 'nnUNetPlans_3d_fullres', 'synth2ch_000_seg.npy'))).data);
      const props = JSON.parse(readFileSync(join(folder, 'synth2ch_000.json'), 'utf8'));
      const refProps = JSON.parse(readFileSync(join(FIXTURE, 'preprocessed', 'nnUNetPlans_3d_fullres', 'synth2ch_000_properties.json'), 'utf8'));
      assert.deepEqual(props, refProps);
      // gt_segmentations and the dataset.json copy.
      assert.deepEqual(readdirSync(join(preprocessed, 'gt_segmentations')).sort(), ids.map((id) => `${id}.nii.gz`).sort());
      assert.ok(existsSync(join(preprocessed, 'dataset.json')));
      if (!scipyUnavailable()) {
        const check = spawnSync(PYTHON, ['-c', `import numpy as np; a = np.load(${JSON.stringify(join(folder, 'synth2ch_001.npy'))}); s = np.load(${JSON.stringify(join(folder, 'synth2ch_001_seg.npy'))}); print(a.dtype, a.shape, s.dtype, s.shape)`], { encoding: 'utf8' });
        assert.equal(check.stdout.trim(), 'float32 (2, 33, 48, 41) int16 (1, 33, 48, 41)');
      }
    } finally {
      cleanup();
    }
  });

  it('runs as `nnunet preprocess` and reports missing plans as a dataset error', async () => {
    const { env, preprocessed, cleanup } = setUp();
    try {
      const out: string[] = [];
      const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), env };
      const args = parseArgs(preprocessCommand.spec, ['-d', '903', '-c', '2d', '-np', '1', '--verbose']);
      assert.ok(args);
      assert.equal(await preprocessCommand.run(args, io), 0);
      assert.ok(out.some((l) => /^2d synth2ch_000: shape after cropping \[34, 42, 48\] -> \[34, 42, 48\]/.test(l)), out.join('\n'));
      assert.equal(readdirSync(join(preprocessed, 'nnUNetPlans_2d')).filter((f) => f.endsWith('.json')).length, 12);
      const missing = parseArgs(preprocessCommand.spec, ['-d', '903', '-plans_name', 'nnUNetResEncUNetMPlans']);
      assert.ok(missing);
      await assert.rejects(preprocessCommand.run(missing, io), /plans not found/);
    } finally {
      cleanup();
    }
  });
});
