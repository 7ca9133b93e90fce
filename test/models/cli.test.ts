// The CLI's model commands (embedded server, a test catalog pointing at a loopback HTTP server):
// print_available_pretrained_models, download_pretrained_model NAME, export_model_to_zip with
// nnU-Net's flags, and download_pretrained_model_by_url refusing to install without a hash.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { runCli } from '../../client/cli.js';
import { tempDir } from '../helpers.js';
import { FIXTURE_MODEL_NAME, MODEL_ZIP } from '../fixtures/nnunet-model.js';
import { startZipServer, type ZipServer } from './zip-server.js';

const ZIP = readFileSync(MODEL_ZIP);

describe('nnunet pretrained-model and export commands', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let http: ZipServer;
  let env: NodeJS.ProcessEnv;

  const nnunet = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  };

  before(async () => {
    tmp = tempDir();
    http = await startZipServer({ '/hippo.zip': { body: ZIP } });
    const catalog = {
      version: 1,
      entries: [
        {
          name: 'hippo-small',
          description: 'nnU-Net v2 Hippocampus model (small)',
          dataset: 'Dataset104_HippoDev',
          channels: [{ name: 'MRI', meaning: 'T1-weighted brain MRI crop' }],
          labels: { background: 0, Anterior: 1, Posterior: 2 },
          licence: 'CC BY-SA 4.0',
          citation: 'Isensee et al., Nature Methods 2021',
          urls: [http.url('/hippo.zip')],
          sha256: createHash('sha256').update(ZIP).digest('hex'),
          size_bytes: ZIP.length,
          format: 'nnunetv2_zip',
        },
      ],
    };
    writeFileSync(join(tmp.dir, 'catalog.json'), JSON.stringify(catalog));
    env = { ...process.env, NNUNET_HOME: tmp.dir, NNUNET_CATALOG: join(tmp.dir, 'catalog.json'), NNUNET_BUNDLED_MODELS: 'none', NNUNET_SERVER: '' };
    delete env.nnUNet_results;
    delete env.nnUNet_raw;
    delete env.nnUNet_preprocessed;
  });
  after(async () => {
    await http?.close();
    tmp?.cleanup();
  });

  it('lists the catalog, installs an entry by name, and exports it with nnU-Net flags', async () => {
    const listed = await nnunet('print_available_pretrained_models');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /hippo-small\n {2}nnU-Net v2 Hippocampus model \(small\)\n {2}dataset Dataset104_HippoDev; input channels: 0: MRI \(T1-weighted brain MRI crop\)/);
    assert.match(listed.stdout, /not installed/);

    const installed = await nnunet('download_pretrained_model', 'hippo-small');
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stdout, new RegExp(`installed Dataset104_HippoDev/${FIXTURE_MODEL_NAME} \\(folds 0\\), SHA-256 [0-9a-f]{64}`));
    assert.match(installed.stderr, /installing: installed Dataset104_HippoDev/);
    assert.ok(existsSync(join(tmp.dir, 'nnUNet_results', 'Dataset104_HippoDev', FIXTURE_MODEL_NAME, 'fold_0', 'model.onnx')));
    assert.match((await nnunet('print_available_pretrained_models')).stdout, new RegExp(`installed: ${FIXTURE_MODEL_NAME}`));

    const out = join(tmp.dir, 'exported.zip');
    const exported = await nnunet('export_model_to_zip', '-d', '104', '-o', out, '-c', '3d_fullres', '-tr', 'nnUNetTrainer_RefSmall', '-p', 'nnUNetPlansSmall', '-f', '0', '-chk', 'checkpoint_final.pth');
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /wrote .*exported\.zip: 9 files, [\d.]+ MB, SHA-256 [0-9a-f]{64}/);
    assert.ok(Object.keys(unzipSync(readFileSync(out))).includes(`Dataset104_HippoDev/${FIXTURE_MODEL_NAME}/fold_0/checkpoint_final.pth`));

    const missing = await nnunet('export_model_to_zip', '-d', '104', '-o', join(tmp.dir, 'none.zip'), '-c', '2d', '-tr', 'nnUNetTrainer_RefSmall', '-p', 'nnUNetPlansSmall');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /configuration\(s\) 2d of dataset 104 .* are not installed/);
    assert.ok(!existsSync(join(tmp.dir, 'none.zip')));
  });

  it('download_pretrained_model_by_url refuses without --sha256 and names what to do', async () => {
    const res = await nnunet('download_pretrained_model_by_url', http.url('/hippo.zip'));
    assert.equal(res.code, 1);
    assert.match(res.stderr, /needs the expected SHA-256 of the zip \(--sha256\)/);
  });
});
