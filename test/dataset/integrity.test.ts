import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { verifyDatasetIntegrity } from '../../server/dataset/index.js';
import { readNifti, writeNifti } from '../../server/io/nifti.js';
import { copyHippocampus, REPO_ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', join(REPO_ROOT, 'client', 'cli.ts')];

/** Runs `nnunet ...` as a user would; resolves with exit code and output even on failure. */
async function nnunet(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('dataset integrity verification', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof tempDir>;
  let raw: string;
  let folder: string;

  beforeEach(() => {
    tmp = tempDir();
    raw = join(tmp.dir, 'raw');
    folder = copyHippocampus(raw);
  });
  afterEach(() => tmp.cleanup());

  it('passes on the real Hippocampus dataset (CLI, exit 0)', async () => {
    const res = await nnunet(['verify_dataset_integrity', '-d', '4'], { nnUNet_raw: raw });
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /Dataset004_Hippocampus: OK — 40 case\(s\) checked/);
  });

  it('lists a wrong label value, a shape mismatch and a missing label file together (CLI, exit 1)', async () => {
    const labels = join(folder, 'labelsTr');
    // hippocampus_001: a voxel with label 3 (the dataset has 0, 1, 2)
    const seg = await readNifti(join(labels, 'hippocampus_001.nii.gz'));
    const data = new Uint8Array(seg.data);
    data[100] = 3;
    await writeNifti(join(labels, 'hippocampus_001.nii.gz'), { ...seg, data }, { datatype: 'uint8' });
    // hippocampus_003: label one slice shorter than its image
    const seg3 = await readNifti(join(labels, 'hippocampus_003.nii.gz'));
    const [z, y, x] = seg3.shape;
    await writeNifti(join(labels, 'hippocampus_003.nii.gz'), { ...seg3, shape: [z - 1, y, x], data: seg3.data.slice(0, (z - 1) * y * x) }, { datatype: 'uint8' });
    // hippocampus_004: label file missing
    rmSync(join(labels, 'hippocampus_004.nii.gz'));

    const res = await nnunet(['verify_dataset_integrity', '-d', 'Dataset004_Hippocampus'], { nnUNet_raw: raw });
    assert.equal(res.code, 1);
    const out = res.stdout;
    assert.match(out, /error: .*hippocampus_001\.nii\.gz: unexpected label value\(s\) 3; expected only 0, 1, 2/);
    assert.match(out, new RegExp(`error: .*hippocampus_003\\.nii\\.gz: shape \\(${z - 1}, ${y}, ${x}\\) does not match image shape \\(${z}, ${y}, ${x}\\)`));
    assert.match(out, /error: .*labelsTr\/hippocampus_004\.nii\.gz: label file missing for case hippocampus_004/);
    assert.match(out, /FAILED — 3 problem\(s\) in 40 case\(s\)/);
  });

  it('reports dataset.json problems, numTraining and channel-count mismatches', async () => {
    const jsonFile = join(folder, 'dataset.json');
    const json = JSON.parse(readFileSync(jsonFile, 'utf8'));
    json.numTraining = 41;
    json.channel_names = { 0: 'MRI', 1: 'T2' };
    writeFileSync(jsonFile, JSON.stringify(json));
    const report = await verifyDatasetIntegrity(folder);
    assert.equal(report.ok, false);
    assert.ok(report.errors.some((e) => /numTraining is 41 but 40 case\(s\) were found/.test(e.reason)));
    assert.equal(report.errors.filter((e) => /has 1 channel\(s\) but dataset.json channel_names lists 2/.test(e.reason)).length, 40);

    writeFileSync(jsonFile, '{"labels": {"background": 0, "a": 1, "b": 3}, "channel_names": {"0": "MRI"}, "numTraining": 40}');
    const bad = await verifyDatasetIntegrity(folder);
    assert.deepEqual(bad.errors.map((e) => e.reason), ['file_ending: required key is missing']);
  });

  it('reports NaN voxels and unreadable files with the file name', async () => {
    const img = await readNifti(join(folder, 'imagesTr', 'hippocampus_006_0000.nii.gz'));
    const data = new Float32Array(img.data);
    data[5] = NaN;
    await writeNifti(join(folder, 'imagesTr', 'hippocampus_006_0000.nii.gz'), { ...img, data }, { datatype: 'float32' });
    writeFileSync(join(folder, 'imagesTr', 'hippocampus_007_0000.nii.gz'), 'not a nifti');
    const report = await verifyDatasetIntegrity(folder);
    assert.ok(report.errors.some((e) => e.file.endsWith('hippocampus_006_0000.nii.gz') && /NaN/.test(e.reason)));
    assert.ok(report.errors.some((e) => e.file.endsWith('hippocampus_007_0000.nii.gz')));
    assert.equal(report.casesChecked, 40);
  });

  it('accepts a v1 Task folder with an MSD-style dataset.json', async () => {
    const v1 = copyHippocampus(raw, 'Task104_Hippo');
    writeFileSync(
      join(v1, 'dataset.json'),
      JSON.stringify({ name: 'Hippocampus', modality: { 0: 'MRI' }, labels: { 0: 'background', 1: 'Anterior', 2: 'Posterior' }, numTraining: 40, numTest: 0, training: [] }),
    );
    const res = await nnunet(['verify_dataset_integrity', '-d', '104'], { nnUNet_raw: raw });
    assert.equal(res.code, 0, res.stdout + res.stderr);
  });
});

describe('nnunet CLI frame', () => {
  it('prints help, per-command help, and refuses unknown commands and missing arguments clearly', async () => {
    const help = await nnunet(['--help'], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /verify_dataset_integrity/);
    const cmdHelp = await nnunet(['verify_dataset_integrity', '-h'], {});
    assert.match(cmdHelp.stdout, /usage: nnunet verify_dataset_integrity -d DATASET/);
    const incomplete = await nnunet(['export_model_to_zip', '-d', '4'], {});
    assert.equal(incomplete.code, 2);
    assert.match(incomplete.stderr, /required: -o/);
    const unknown = await nnunet(['frobnicate'], {});
    assert.equal(unknown.code, 2);
    const usage = await nnunet(['verify_dataset_integrity'], {});
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /required: -d/);
    const missing = await nnunet(['verify_dataset_integrity', '-d', '999'], { nnUNet_raw: '/nonexistent' });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no dataset with id 999/);
  });
});
