import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../../client/args.js';
import { planAndPreprocessCommand } from '../../client/commands/plan-and-preprocess.js';
import { readNpy } from '../../server/io/npy.js';
import { copyHippocampus, tempDir } from '../helpers.js';
import { fixtureModelMember } from '../fixtures/nnunet-model.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** nnU-Net's own plans and fingerprint for these 40 cases, from the fixture model zip. */
function nnunetPlansAndFingerprint(): { plans: Json; fingerprint: Json } {
  const get = (suffix: string) => JSON.parse(new TextDecoder().decode(fixtureModelMember(suffix)));
  return { plans: get('/plans.json'), fingerprint: get('/dataset_fingerprint.json') };
}

describe('nnunet plan_and_preprocess on the real Hippocampus dataset', function () {
  this.timeout(600_000);
  it("gives nnU-Net's fingerprint and plans and writes preprocessed cases", async () => {
    const tmp = tempDir();
    try {
      const raw = join(tmp.dir, 'raw');
      copyHippocampus(raw);
      const pre = join(tmp.dir, 'pre');
      const lines: string[] = [];
      const io = { stdout: (t: string) => lines.push(t), stderr: (t: string) => lines.push(t), env: { ...process.env, nnUNet_raw: raw, nnUNet_preprocessed: pre } };
      const args = parseArgs(planAndPreprocessCommand.spec, ['-d', '4', '--verify_dataset_integrity', '-c', '3d_fullres', '-np', '2', '-npfp', '2'])!;
      assert.equal(await planAndPreprocessCommand.run(args, io), 0, lines.join('\n'));
      const folder = join(pre, 'Dataset004_Hippocampus');
      const ours = { plans: JSON.parse(readFileSync(join(folder, 'nnUNetPlans.json'), 'utf8')), fingerprint: JSON.parse(readFileSync(join(folder, 'dataset_fingerprint.json'), 'utf8')) };
      const theirs = nnunetPlansAndFingerprint();
      assert.deepEqual(ours.fingerprint.shapes_after_crop, theirs.fingerprint.shapes_after_crop);
      assert.deepEqual(ours.fingerprint.spacings, theirs.fingerprint.spacings);
      const fp = (f: Json) => f.foreground_intensity_properties_per_channel['0'];
      // numpy sums the 1e8 float32 samples in float32 (pairwise), we sum exactly: mean/std agree to ~2e-5
      for (const [k, tol] of [['min', 0], ['max', 0], ['median', 0], ['percentile_00_5', 1e-7], ['percentile_99_5', 1e-7], ['mean', 1e-4], ['std', 1e-4]] as const) {
        assert.ok(Math.abs(fp(ours.fingerprint)[k] - fp(theirs.fingerprint)[k]) <= tol * Math.abs(fp(theirs.fingerprint)[k]), `${k}: ${fp(ours.fingerprint)[k]} vs ${fp(theirs.fingerprint)[k]}`);
      }
      for (const name of ['2d', '3d_fullres']) {
        const a = ours.plans.configurations[name];
        const b = theirs.plans.configurations[name];
        // the fixture model divided nnU-Net's planned 3d_fullres features by 4; everything else is nnU-Net's plan
        if (name === '3d_fullres') b.architecture.arch_kwargs.features_per_stage = b.architecture.arch_kwargs.features_per_stage.map((f: number) => f * 4);
        for (const key of ['patch_size', 'batch_size', 'spacing', 'median_image_size_in_voxels', 'normalization_schemes', 'use_mask_for_norm', 'batch_dice', 'architecture']) {
          assert.deepEqual(a[key], b[key], `${name}.${key}`);
        }
      }
      assert.equal(ours.plans.configurations['3d_lowres'], theirs.plans.configurations['3d_lowres']);
      const data = await readNpy(join(folder, 'nnUNetPlans_3d_fullres', 'hippocampus_001.npy'));
      const seg = await readNpy(join(folder, 'nnUNetPlans_3d_fullres', 'hippocampus_001_seg.npy'));
      assert.equal(data.dtype, 'float32');
      assert.equal(seg.dtype, 'int16');
      assert.deepEqual(data.shape.slice(1), seg.shape.slice(1));
      assert.ok(existsSync(join(folder, 'gt_segmentations', 'hippocampus_001.nii.gz')));
      assert.match(lines.join('\n'), /integrity check passed \(40 case\(s\)\)/);
    } finally {
      tmp.cleanup();
    }
  });
});
