// The README's first command: `npm run demo` = `nnunet demo`. The bundled model (models/demo) is
// copied into a fresh repository by the server at start, the bundled sample is segmented through
// Predict, and the result is checked against the sample's reference: the model's Dice on this
// held-out case is about 0.8 (models/demo/README.md), so a broken model, a wrong geometry on the
// way out or a mislabelled export fails the thresholds below.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../client/cli.js';
import { DEMO, demoSample } from '../../client/commands/demo.js';
import { readNifti } from '../../server/io/nifti.js';
import { REPO_ROOT, tempDir } from '../helpers.js';
import { startServerProcess } from '../server/server-process.js';

const BUNDLED = join(REPO_ROOT, 'models', 'demo');

async function cli(argv: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function diceOf(out: string, label: string): number {
  const m = new RegExp(`${label}\\s+Dice ([0-9.]+)`).exec(out);
  assert.ok(m, `no Dice for ${label} in:\n${out}`);
  return Number(m[1]);
}

describe('nnunet demo (the bundled model)', function () {
  this.timeout(180_000);

  it('ships the model folder and the sample', () => {
    const model = join(BUNDLED, DEMO.model.dataset, `${DEMO.model.trainer}__${DEMO.model.plans}__${DEMO.model.configuration}`);
    for (const f of ['plans.json', 'dataset.json', 'fold_0/model.onnx', 'fold_0/model.onnx.json']) assert.ok(existsSync(join(model, f)), `${f} is missing from ${model}`);
    const sample = demoSample(REPO_ROOT);
    assert.ok(existsSync(sample.image) && existsSync(sample.reference));
  });

  it('segments the sample through an embedded server into a fresh repository', async () => {
    const t = tempDir();
    try {
      const output = join(t.dir, 'out');
      const env = { ...process.env, NNUNET_HOME: join(t.dir, 'home'), NNUNET_BUNDLED_MODELS: BUNDLED, NNUNET_SERVER: '' };
      const run = await cli(['demo', '-o', output], env);
      assert.equal(run.code, 0, run.err);
      const written = join(output, `${DEMO.caseId}.nii.gz`);
      const [seg, image] = await Promise.all([readNifti(written), readNifti(demoSample(REPO_ROOT).image)]);
      assert.deepEqual(seg.shape, image.shape);
      assert.deepEqual(seg.affine, image.affine);
      assert.ok(diceOf(run.out, 'anterior') > 0.7, run.out);
      assert.ok(diceOf(run.out, 'posterior') > 0.7, run.out);
      // The server installed the model into its repository.
      assert.ok(existsSync(join(t.dir, 'home', 'nnUNet_results', DEMO.model.dataset)), 'the bundled model was not copied into the repository');
    } finally {
      t.cleanup();
    }
  });

  it('segments the sample through a running server (npm start installs the model)', async () => {
    const t = tempDir();
    const server = await startServerProcess({ NNUNET_HOME: t.dir, NNUNET_BUNDLED_MODELS: BUNDLED });
    try {
      const output = join(t.dir, 'out');
      const run = await cli(['demo', '-o', output, '--server', server.address], { ...process.env, NNUNET_TOKEN: '' });
      assert.equal(run.code, 0, run.err);
      assert.ok(existsSync(join(output, `${DEMO.caseId}.nii.gz`)));
      assert.ok(diceOf(run.out, 'anterior') > 0.7, run.out);
    } finally {
      await server.stop();
      t.cleanup();
    }
  });

  it("the README's predict command: a folder of images through the demo model; a stray file is refused by name", async () => {
    const t = tempDir();
    try {
      const input = join(t.dir, 'in');
      mkdirSync(input);
      copyFileSync(demoSample(REPO_ROOT).image, join(input, `${DEMO.caseId}_0000.nii.gz`));
      copyFileSync(demoSample(REPO_ROOT).reference, join(input, `${DEMO.caseId}_reference.nii.gz`));
      const env = { ...process.env, NNUNET_HOME: join(t.dir, 'home'), NNUNET_BUNDLED_MODELS: BUNDLED, NNUNET_SERVER: '' };
      const argv = ['predict', '-d', '4', '-c', '3d_fullres', '-p', 'nnUNetDemoPlans', '-f', '0', '-i', input, '-o', join(t.dir, 'out')];
      const refused = await cli(argv, env);
      assert.notEqual(refused.code, 0);
      assert.match(refused.err, /1 file\(s\) not named CASE_XXXX\.nii\.gz \(XXXX = the channel number\): hippocampus_004_reference\.nii\.gz; move them out/);
      rmSync(join(input, `${DEMO.caseId}_reference.nii.gz`));
      const run = await cli(argv, env);
      assert.equal(run.code, 0, run.err);
      assert.ok(existsSync(join(t.dir, 'out', `${DEMO.caseId}.nii.gz`)));
      assert.ok(existsSync(join(t.dir, 'out', 'plans.json')));
    } finally {
      t.cleanup();
    }
  });

  it('says what is wrong when the server has no demo model', async () => {
    const t = tempDir();
    const server = await startServerProcess({ NNUNET_HOME: t.dir });
    try {
      const run = await cli(['demo', '-o', join(t.dir, 'out'), '--server', server.address], { ...process.env, NNUNET_TOKEN: '' });
      assert.equal(run.code, 1);
      assert.match(run.err, /has no demo model .*NNUNET_BUNDLED_MODELS=none/s);
      assert.equal(existsSync(join(t.dir, 'out')), false);
    } finally {
      await server.stop();
      t.cleanup();
    }
  });
});
