// Export: the installed nnU-Net model exported to a zip has nnU-Net v2's member paths (every member
// of nnU-Net's own export, plus our model.onnx per fold), Python's zipfile extracts it as
// nnUNetv2_install_pretrained_model_from_zip would, and installing it into another results root
// gives a model that predicts exactly like the original, from the shipped ONNX (no conversion).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { exportModelZip, planExport } from '../../server/models/export.js';
import { installModelZip } from '../../server/models/install.js';
import { checkFold, inspectModel, listModels } from '../../server/models/repository.js';
import { loadModelFolder, releaseModel } from '../../server/inference/model-folder.js';
import { predictCase } from '../../server/inference/predictor.js';
import { readNifti } from '../../server/io/nifti.js';
import { HIPPOCAMPUS, runPython, tempDir } from '../helpers.js';
import { FIXTURE_MODEL_NAME, FIXTURE_PREDICTIONS, MODEL_ZIP } from '../fixtures/nnunet-model.js';

const OPTS = { dataset: '104', trainer: 'nnUNetTrainer_RefSmall', plans: 'nnUNetPlansSmall' };
const FOLD0 = `Dataset104_HippoDev/${FIXTURE_MODEL_NAME}/fold_0`;

describe('model export to zip', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof tempDir>;
  let source: string;

  before(async () => {
    tmp = tempDir();
    source = join(tmp.dir, 'results-a');
    await installModelZip(MODEL_ZIP, source);
  });
  after(() => tmp?.cleanup());

  it("holds every member of nnU-Net's own export of the model, plus model.onnx and its sidecar", async () => {
    const out = join(tmp.dir, 'export.zip');
    const plan = await exportModelZip(source, out, OPTS);
    const theirs = Object.keys(unzipSync(readFileSync(MODEL_ZIP))).filter((n) => !n.endsWith('/')).sort();
    const ours = Object.keys(unzipSync(readFileSync(out))).sort();
    assert.deepEqual(ours, [...theirs, `${FOLD0}/model.onnx`, `${FOLD0}/model.onnx.json`].sort());
    assert.deepEqual(plan.files.map((f) => f.member).sort(), ours);
    assert.deepEqual(readdirSync(tmp.dir).filter((n) => n.endsWith('.tmp')), [], 'no temporary zip left');
    // what nnUNetv2_install_pretrained_model_from_zip does: zipfile.extractall
    const listed = runPython('import sys, zipfile, tempfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nd = tempfile.mkdtemp()\nz.extractall(d)\nprint("\\n".join(sorted(z.namelist())))', [out]).toString().trim().split('\n');
    assert.deepEqual(listed, ours);
  });

  it('round trip: the exported zip installs into another results root and predicts identically, from the shipped ONNX', async () => {
    const out = join(tmp.dir, 'roundtrip.zip');
    await exportModelZip(source, out, { ...OPTS, configurations: ['3d_fullres'], folds: ['0'] });
    const target = join(tmp.dir, 'results-b');
    const installed = await installModelZip(out, target);
    assert.deepEqual(installed.map((m) => `${m.dataset}/${m.model}`), [`Dataset104_HippoDev/${FIXTURE_MODEL_NAME}`]);
    const folder = join(target, 'Dataset104_HippoDev', FIXTURE_MODEL_NAME);
    // the sidecar was brought up to date with the extracted checkpoint, so the loader uses model.onnx
    const sidecar = JSON.parse(readFileSync(join(folder, 'fold_0', 'model.onnx.json'), 'utf8')) as { sourceMtimeMs: number };
    assert.equal(sidecar.sourceMtimeMs, statSync(join(folder, 'fold_0', 'checkpoint_final.pth')).mtimeMs);
    assert.equal(checkFold(folder, '0').network, 'model.onnx');
    assert.ok(readFileSync(join(folder, 'fold_0', 'model.onnx')).equals(readFileSync(join(source, FOLD0, 'model.onnx'))));
    const m = listModels(target)[0];
    assert.equal(inspectModel(m).state, 'READY');
    const model = await loadModelFolder(folder);
    try {
      const p = await predictCase(model, [join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_001_0000.nii.gz')], { mirroring: false });
      const ref = await readNifti(join(FIXTURE_PREDICTIONS, 'notta', 'hippocampus_001.nii.gz'));
      assert.deepEqual([...p.segmentation], [...ref.data]);
    } finally {
      await releaseModel(model);
    }
  });

  it('names what is missing: a configuration, a fold, a trainer, a checkpoint', () => {
    assert.throws(() => planExport(source, { ...OPTS, configurations: ['2d'] }), /configuration\(s\) 2d of dataset 104 \(nnUNetTrainer_RefSmall__nnUNetPlansSmall\) are not installed \(installed: Dataset104_HippoDev\/nnUNetTrainer_RefSmall__nnUNetPlansSmall__3d_fullres\)/);
    assert.throws(() => planExport(source, { ...OPTS, folds: ['0', '3'] }), /fold\(s\) 3 of .*3d_fullres do not exist \(available: 0\)/);
    assert.throws(() => planExport(source, { dataset: '104' }), /no model of dataset 104 with trainer nnUNetTrainer and plans nnUNetPlans/);
    assert.throws(() => planExport(source, { ...OPTS, checkpoints: ['checkpoint_best.pth'] }), /fold_0 has no checkpoint_best\.pth \(nor checkpoint_best\.safetensors\)/);
  });
});
