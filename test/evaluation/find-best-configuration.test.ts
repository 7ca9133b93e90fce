import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBestConfigurationCommand } from '../../client/commands/find-best-configuration.js';
import { writeFileAtomic } from '../../server/io/atomic.js';
import { writeNifti } from '../../server/io/nifti.js';
import { encodeNpz } from '../../server/io/npz.js';
import { parsePythonJson } from '../../server/util/pyjson.js';
import { makePhantom } from '../fixtures/synthetic.js';
import { SHARED, tempDir } from '../helpers.js';

const PLANS = join(SHARED, 'fixtures', 'nnunet_reference', 'preprocessing', 'Dataset901_Synth', 'nnUNetPlans.json');
const affine = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
const shape: [number, number, number] = [12, 20, 20];

/** A prediction derived from the reference: `spurious` adds a far blob of label 1, `erode` drops label-2 voxels. */
function perturb(label: Uint8Array, kind: 'spurious' | 'erode', seed: number): Uint8Array {
  const out = label.slice();
  if (kind === 'spurious') for (let i = 0; i < 8; i++) out[(1 * 20 + 1) * 20 + 1 + i] = 1;
  else for (let i = 0; i < out.length; i++) if (out[i] === 2 && (i * 7 + seed) % 3 === 0) out[i] = 0;
  return out;
}

/** Soft probabilities of a label map (0.8 on the label, 0.1 elsewhere), K = 3. */
function probabilities(seg: Uint8Array): Float32Array {
  const p = new Float32Array(3 * seg.length).fill(0.1);
  seg.forEach((l, i) => (p[l * seg.length + i] = 0.8));
  return p;
}

describe('find_best_configuration', function () {
  this.timeout(120_000);
  it('scores single models and their ensemble on pooled cross-validation, picks the best, and writes the instructions', async () => {
    const tmp = tempDir();
    try {
      const env = { ...process.env, nnUNet_raw: join(tmp.dir, 'raw'), nnUNet_preprocessed: join(tmp.dir, 'pre'), nnUNet_results: join(tmp.dir, 'res') };
      const name = 'Dataset777_Select';
      const gt = join(env.nnUNet_preprocessed, name, 'gt_segmentations');
      mkdirSync(gt, { recursive: true });
      copyFileSync(PLANS, join(env.nnUNet_preprocessed, name, 'nnUNetPlans.json'));
      const datasetJson = { channel_names: { 0: 'T2' }, labels: { background: 0, a: 1, b: 2 }, numTraining: 10, file_ending: '.nii.gz' };
      const image = { shape, channels: 1, spacing: [1, 1, 1] as [number, number, number], affine };
      const labelsOf: Uint8Array[] = [];
      for (let c = 0; c < 10; c++) {
        const p = makePhantom({ shape, labels: 2, seed: 100 + c });
        labelsOf.push(p.label);
        await writeNifti(join(gt, `case_${c}.nii.gz`), { ...image, data: p.label }, { datatype: 'uint8' });
      }
      for (const [config, kind] of [['2d', 'spurious'], ['3d_fullres', 'erode']] as const) {
        const folder = join(env.nnUNet_results, name, `nnUNetTrainer__nnUNetPlans__${config}`);
        mkdirSync(folder, { recursive: true });
        copyFileSync(PLANS, join(folder, 'plans.json'));
        writeFileSync(join(folder, 'dataset.json'), JSON.stringify(datasetJson));
        for (let c = 0; c < 10; c++) {
          const validation = join(folder, `fold_${c % 5}`, 'validation');
          mkdirSync(validation, { recursive: true });
          const seg = perturb(labelsOf[c], kind, c);
          await writeNifti(join(validation, `case_${c}.nii.gz`), { ...image, data: seg }, { datatype: 'uint8' });
          await writeFileAtomic(join(validation, `case_${c}.npz`), encodeNpz({ probabilities: { dtype: 'float32', shape: [3, ...shape], data: probabilities(seg) } }));
          await writeFileAtomic(join(validation, `case_${c}.json`), JSON.stringify({ spacing: [1, 1, 1], nibabel_stuff: { original_affine: affine } }));
        }
      }
      const out: string[] = [];
      const io = { stdout: (t: string) => out.push(t), stderr: () => undefined, env };
      const args = { dataset: '777', configurations: ['2d', '3d_fullres', '3d_lowres'], trainers: ['nnUNetTrainer'], plans: ['nnUNetPlans'], folds: [0, 1, 2, 3, 4], noEnsembling: false, np: 2 };
      assert.equal(await findBestConfigurationCommand.run(args, io), 0);
      const info = parsePythonJson(readFileSync(join(env.nnUNet_results, name, 'inference_information.json'), 'utf8')) as {
        all_results: Record<string, number>;
        best_model_or_ensemble: { result_on_crossval_pre_pp: number; result_on_crossval_post_pp: number; selected_model_or_models: unknown[] };
        considered_models: unknown[];
      };
      const ids = Object.keys(info.all_results).sort(); // written with sort_keys, as nnU-Net
      assert.deepEqual(ids, [
        'ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_fullres___0_1_2_3_4',
        'nnUNetTrainer__nnUNetPlans__2d',
        'nnUNetTrainer__nnUNetPlans__3d_fullres',
      ]);
      const best = Math.max(...Object.values(info.all_results));
      assert.equal(info.best_model_or_ensemble.result_on_crossval_pre_pp, best);
      assert.ok(info.best_model_or_ensemble.result_on_crossval_post_pp >= best);
      assert.equal(info.considered_models.length, 2); // 3d_lowres is not in these plans: skipped
      const text = readFileSync(join(env.nnUNet_results, name, 'inference_instructions.txt'), 'utf8');
      assert.match(text, /nnunet predict -d Dataset777_Select/);
      assert.match(text, /nnunet apply_postprocessing/);
      assert.ok(existsSync(join(env.nnUNet_results, name, 'nnUNetTrainer__nnUNetPlans__2d', 'crossval_results_folds_0_1_2_3_4', 'summary.json')));
      // a configuration in the plans without a trained model is an error, as in nnU-Net
      await assert.rejects(findBestConfigurationCommand.run({ ...args, configurations: ['2d', '3d_fullres'], trainers: ['nnUNetTrainerOther'] }, io), /has no trained model/);
    } finally {
      tmp.cleanup();
    }
  });
});
