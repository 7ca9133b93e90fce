import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNifti, writeNifti } from '../../server/io/nifti.js';
import { decodeNpz } from '../../server/io/npz.js';
import { loadModelFolder, releaseModel, type LoadedModel } from '../../server/inference/model-folder.js';
import { predictCase } from '../../server/inference/predictor.js';
import { HIPPOCAMPUS, tempDir } from '../helpers.js';
import { FIXTURE_MODEL_DIR as FIXTURE, fixtureModelMember, installFixtureModel } from '../fixtures/nnunet-model.js';

const CASES = ['hippocampus_001', 'hippocampus_003', 'hippocampus_004'];

describe('prediction parity with nnU-Net v2 (real model, real images)', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let model: LoadedModel;

  before(async () => {
    tmp = tempDir();
    model = await loadModelFolder(installFixtureModel(tmp.dir), { folds: ['0'] });
  });
  after(async () => {
    if (model) await releaseModel(model);
    tmp?.cleanup();
  });

  for (const variant of ['notta', 'tta'] as const) {
    for (const c of CASES) {
      it(`${c} (${variant}): ≥ 99.9 % equal voxels, probabilities within 1e-3`, async () => {
        const p = await predictCase(model, [join(HIPPOCAMPUS, 'imagesTr', `${c}_0000.nii.gz`)], { mirroring: variant === 'tta', saveProbabilities: true });
        const refSeg = await readNifti(join(FIXTURE, 'predictions', variant, `${c}.nii.gz`));
        assert.deepEqual(p.shape, refSeg.shape);
        let same = 0;
        for (let i = 0; i < p.segmentation.length; i++) if (p.segmentation[i] === refSeg.data[i]) same++;
        const agreement = same / p.segmentation.length;
        const refProb = decodeNpz(readFileSync(join(FIXTURE, 'predictions', variant, `${c}.npz`))).probabilities;
        assert.deepEqual(refProb.shape, [3, ...p.shape]);
        let maxDiff = 0;
        let over1e4 = 0;
        let over1e3 = 0;
        const ref = refProb.data as Float32Array;
        for (let i = 0; i < ref.length; i++) {
          const d = Math.abs(ref[i] - p.probabilities![i]);
          maxDiff = Math.max(maxDiff, d);
          if (d > 1e-4) over1e4++;
          if (d > 1e-3) over1e3++;
        }

        console.log(`      ${c} ${variant}: agreement ${(agreement * 100).toFixed(4)} %, max |Δp| ${maxDiff.toExponential(2)} (${over1e4} of ${ref.length} values > 1e-4, ${over1e3} > 1e-3), predict ${p.timings.predictS.toFixed(2)} s`);
        assert.ok(agreement >= 0.999, `voxel agreement ${agreement}`);
        // nnU-Net accumulates logits in float16; a 1e-6 difference between onnxruntime's and
        // PyTorch's convolutions occasionally rounds to the neighbouring float16 value, which moves
        // a probability by up to ~p(1-p)·2^-7. Everything else agrees to 1e-4.
        assert.ok(over1e4 <= ref.length * 2e-4, `${over1e4} values differ by more than 1e-4`);
        assert.ok(over1e3 <= ref.length * 2e-5, `${over1e3} values differ by more than 1e-3`);
        assert.ok(maxDiff < 2e-3, `max probability difference ${maxDiff}`);
        assert.deepEqual(p.reference.affine, refSeg.affine);
      });
    }
  }
});

describe('nnunet predict (CLI, real model)', function () {
  this.timeout(300_000);
  it('segments a folder like nnUNetv2_predict, writing the extra files and skipping done cases with --continue_prediction', async () => {
    const { predictCommand } = await import('../../client/commands/predict.js');
    const { parseArgs } = await import('../../client/args.js');
    const tmp = tempDir();
    try {
      installFixtureModel(join(tmp.dir, 'results'));
      const input = join(tmp.dir, 'in');
      mkdirSync(input);
      for (const c of CASES.slice(0, 2)) writeFileSync(join(input, `${c}_0000.nii.gz`), readFileSync(join(HIPPOCAMPUS, 'imagesTr', `${c}_0000.nii.gz`)));
      const output = join(tmp.dir, 'out');
      const env = { ...process.env, nnUNet_results: join(tmp.dir, 'results') };
      const lines: string[] = [];
      const io = { stdout: (t: string) => lines.push(t), stderr: (t: string) => lines.push(t), env };
      const argv = ['-d', '104', '-c', '3d_fullres', '-tr', 'nnUNetTrainer_RefSmall', '-p', 'nnUNetPlansSmall', '-i', input, '-o', output, '-f', '0', '--disable_tta', '--save_probabilities'];
      assert.equal(await predictCommand.run(parseArgs(predictCommand.spec, argv)!, io), 0, lines.join('\n'));
      // Through the server's Predict: the model's dataset.json and plans.json (from GetModel), CASE.json
      // with the case geometry.
      assert.deepEqual(JSON.parse(readFileSync(join(output, 'plans.json'), 'utf8')), JSON.parse(Buffer.from(fixtureModelMember('plans.json')).toString('utf8')));
      for (const f of ['dataset.json', 'plans.json', 'predict_from_raw_data_args.json', 'hippocampus_001.nii.gz', 'hippocampus_001.npz', 'hippocampus_001.json', 'hippocampus_003.nii.gz']) {
        assert.ok(readFileSync(join(output, f)).length > 0, f);
      }
      const props = JSON.parse(readFileSync(join(output, 'hippocampus_001.json'), 'utf8'));
      const input001 = await readNifti(join(input, 'hippocampus_001_0000.nii.gz'));
      assert.deepEqual(props.nibabel_stuff.original_affine, input001.affine);
      const ours = await readNifti(join(output, 'hippocampus_003.nii.gz'));
      const theirs = await readNifti(join(FIXTURE, 'predictions', 'notta', 'hippocampus_003.nii.gz'));
      assert.deepEqual([...ours.data], [...theirs.data]);
      lines.length = 0;
      assert.equal(await predictCommand.run(parseArgs(predictCommand.spec, [...argv, '--continue_prediction'])!, io), 0);
      assert.match(lines.join('\n'), /predicting 0 case\(s\)/);
      await assert.rejects(predictCommand.run(parseArgs(predictCommand.spec, [...argv.slice(0, 12), '-f', '3'])!, io), /fold 3 was requested but fold_3 does not exist \(available: 0\)/);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('prediction on unusual input (real model)', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let model: LoadedModel;
  const affine = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  before(async () => {
    tmp = tempDir();
    model = await loadModelFolder(installFixtureModel(tmp.dir), { folds: ['0'] });
  });
  after(async () => {
    if (model) await releaseModel(model);
    tmp?.cleanup();
  });

  it('refuses a case whose channel count does not match the model, naming the file', async () => {
    const img = join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_001_0000.nii.gz');
    await assert.rejects(predictCase(model, [img, img], { mirroring: false }), /2 channel\(s\) but the model expects 1/);
  });

  it('predicts an all-zero image (nothing to crop) with the input geometry and finite probabilities', async () => {
    const file = join(tmp.dir, 'zeros_0000.nii.gz');
    await writeNifti(file, { data: new Float32Array(20 * 30 * 25), shape: [20, 30, 25], channels: 1, spacing: [1, 1, 1], affine }, { datatype: 'float32' });
    const p = await predictCase(model, [file], { mirroring: false, saveProbabilities: true });
    assert.deepEqual(p.shape, [20, 30, 25]);
    assert.deepEqual(p.properties.bbox_used_for_cropping, [[0, 20], [0, 30], [0, 25]]);
    assert.ok(p.probabilities!.every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
  });

  it('segments an image one voxel thick (padded to the patch) without error', async () => {
    const src = await readNifti(join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_001_0000.nii.gz'));
    const [, y, x] = src.shape;
    const slice = Float32Array.from(src.data.subarray(17 * y * x, 18 * y * x) as ArrayLike<number>);
    const file = join(tmp.dir, 'thin_0000.nii.gz');
    await writeNifti(file, { data: slice, shape: [1, y, x], channels: 1, spacing: [1, 1, 1], affine }, { datatype: 'float32' });
    const p = await predictCase(model, [file], { mirroring: false });
    assert.deepEqual(p.shape, [1, y, x]);
    assert.ok(p.segmentation.every((v) => v <= 2));
  });
});
