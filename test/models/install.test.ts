import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { strToU8, unzipSync, zipSync } from 'fflate';
import { installModelFromZipCommand } from '../../client/commands/install-model.js';
import { checkMemberPath, installModelZip } from '../../server/models/install.js';
import { loadModelFolder, releaseModel } from '../../server/inference/model-folder.js';
import { predictCase } from '../../server/inference/predictor.js';
import { readNifti } from '../../server/io/nifti.js';
import { HIPPOCAMPUS, SHARED, tempDir } from '../helpers.js';
import { MODEL_ZIP } from '../fixtures/nnunet-model.js';

const MODEL = 'nnUNetTrainer_RefSmall__nnUNetPlansSmall__3d_fullres';

/** Writes a zip with the given members (name → bytes); fflate writes any name, even unsafe ones. */
async function makeZip(file: string, members: Record<string, Uint8Array | string>): Promise<void> {
  writeFileSync(file, zipSync(Object.fromEntries(Object.entries(members).map(([n, d]) => [n, typeof d === 'string' ? strToU8(d) : d]))));
}

const leftovers = (root: string) => (existsSync(root) ? readdirSync(root).filter((n) => n.startsWith('.install-')) : []);

describe('model install from zip', function () {
  this.timeout(120_000);

  it('refuses unsafe member paths', () => {
    assert.equal(checkMemberPath('Dataset001_X/a/b.json'), undefined);
    assert.match(checkMemberPath('../evil')!, /\.\./);
    assert.match(checkMemberPath('a/../../evil')!, /\.\./);
    assert.match(checkMemberPath('/etc/passwd')!, /absolute/);
    assert.match(checkMemberPath('C:/x')!, /absolute/);
    assert.match(checkMemberPath('a\\b')!, /backslash/);
  });

  it("installs the real nnU-Net v2 export zip (CLI) and the installed model predicts like nnU-Net", async () => {
    const tmp = tempDir();
    try {
      const results = join(tmp.dir, 'results');
      const out: string[] = [];
      const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), env: { ...process.env, nnUNet_results: results } };
      assert.equal(await installModelFromZipCommand.run({ zip: MODEL_ZIP, overwrite: false }, io), 0);
      const folder = join(results, 'Dataset104_HippoDev', MODEL);
      assert.ok(existsSync(join(folder, 'fold_0', 'model.onnx')), 'converted to ONNX at install');
      assert.deepEqual(leftovers(results), []);
      const model = await loadModelFolder(folder);
      try {
        const p = await predictCase(model, [join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_004_0000.nii.gz')], { mirroring: false });
        const ref = await readNifti(join(SHARED, 'fixtures', 'nnunetv2_model', 'predictions', 'notta', 'hippocampus_004.nii.gz'));
        assert.deepEqual([...p.segmentation], [...ref.data]);
      } finally {
        await releaseModel(model);
      }
      // a second install refuses to replace silently, and replaces with overwrite
      await assert.rejects(installModelZip(MODEL_ZIP, results), /already installed/);
      await installModelZip(MODEL_ZIP, results, { overwrite: true });
      assert.deepEqual(readdirSync(join(results, 'Dataset104_HippoDev')), [MODEL]);
    } finally {
      tmp.cleanup();
    }
  });

  it('leaves nothing behind for a ../ entry, a truncated zip, a non-zip, a zip without a model, or a broken checkpoint', async () => {
    const tmp = tempDir();
    try {
      const results = join(tmp.dir, 'results');
      const evil = join(tmp.dir, 'evil.zip');
      await makeZip(evil, { 'Dataset001_X/m__p__3d_fullres/plans.json': '{}', '../../escape.txt': 'x' });
      await assert.rejects(installModelZip(evil, results), /unsafe zip entry.*\.\.\/\.\.\/escape\.txt/);
      assert.ok(!existsSync(join(tmp.dir, 'escape.txt')));

      const truncated = join(tmp.dir, 'truncated.zip');
      const bytes = readFileSync(MODEL_ZIP);
      writeFileSync(truncated, bytes.subarray(0, bytes.length - 5000));
      await assert.rejects(installModelZip(truncated, results), /truncated\.zip: not a readable zip archive/);

      const text = join(tmp.dir, 'text.zip');
      writeFileSync(text, 'hello');
      await assert.rejects(installModelZip(text, results), /not a readable zip archive/);

      const empty = join(tmp.dir, 'empty.zip');
      await makeZip(empty, { 'Dataset001_X/readme.txt': 'no model' });
      await assert.rejects(installModelZip(empty, results), /holds no model folder/);

      // the real model with a damaged checkpoint
      const members = unzipSync(bytes);
      const ck = Object.keys(members).find((n) => n.endsWith('checkpoint_final.pth'))!;
      members[ck] = members[ck].slice(0, 1000);
      const broken = join(tmp.dir, 'broken.zip');
      await makeZip(broken, members);
      await assert.rejects(installModelZip(broken, results), /cannot be loaded/);

      assert.deepEqual(existsSync(results) ? readdirSync(results) : [], []);
    } finally {
      tmp.cleanup();
    }
  });
});
