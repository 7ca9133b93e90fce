// The pretrained catalog path end to end, through the real server process: a test catalog
// (NNUNET_CATALOG) whose entry points at a loopback HTTP server serving nnU-Net's real model zip;
// ListPretrainedModels, InstallPretrainedModel with streamed progress (admin only), the model's
// state in ListModels, a prediction with parity against nnU-Net's own, ExportModel streaming a
// zip that installs elsewhere, and failures that leave nothing behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient, type InstallProgress } from '../../client/sdk/index.js';
import { installModelZip } from '../../server/models/install.js';
import { readNifti } from '../../server/io/nifti.js';
import { readNpz } from '../../server/io/npz.js';
import { HIPPOCAMPUS, tempDir } from '../helpers.js';
import { FIXTURE_MODEL_NAME, FIXTURE_PREDICTIONS, MODEL_ZIP } from '../fixtures/nnunet-model.js';
import { ADMIN_TOKEN, READ_TOKEN, startServerProcess, type ServerProcess } from '../server/server-process.js';
import { startZipServer, type ZipServer } from './zip-server.js';

const ZIP = readFileSync(MODEL_ZIP);
const ZIP_SHA = createHash('sha256').update(ZIP).digest('hex');
const CHUNK = 256 * 1024;
const code = async (p: Promise<unknown>) => ((await p.then(() => assert.fail('expected a gRPC error'), (e: grpc.ServiceError) => e)) as grpc.ServiceError);

describe('pretrained models through the server process (catalog, install, state, predict, export)', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let http: ZipServer;
  let server: ServerProcess;
  let admin: NnunetClient;
  let reader: NnunetClient;
  const results = () => join(tmp.dir, 'nnUNet_results');

  before(async () => {
    tmp = tempDir();
    http = await startZipServer({ '/hippo.zip': { body: ZIP, dropAfter: 800_000, dropTimes: 1 }, '/plain.zip': { body: ZIP } });
    const entry = {
      description: 'nnU-Net v2 Hippocampus model (small), from a loopback server',
      dataset: 'Dataset104_HippoDev',
      channels: [{ name: 'MRI', meaning: 'T1-weighted brain MRI crop around the hippocampus' }],
      labels: { background: 0, Anterior: 1, Posterior: 2 },
      licence: 'CC BY-SA 4.0',
      citation: 'Isensee et al., Nature Methods 2021',
      urls: [http.url('/hippo.zip')],
      format: 'nnunetv2_zip',
    };
    const catalog = {
      version: 1,
      entries: [
        { name: 'hippo-small', ...entry, sha256: ZIP_SHA, size_bytes: ZIP.length },
        { name: 'hippo-unhashed', ...entry, sha256: null, size_bytes: null },
        { name: 'Task004_Hippocampus', ...entry, dataset: 'Task004_Hippocampus', urls: ['https://zenodo.org/record/4003545/files/Task004_Hippocampus.zip?download=1'], sha256: null, size_bytes: null, format: 'nnunetv1_zip', labels: null },
      ],
    };
    writeFileSync(join(tmp.dir, 'catalog.json'), JSON.stringify(catalog));
    mkdirSync(join(tmp.dir, 'tmp'));
    server = await startServerProcess({
      NNUNET_HOME: tmp.dir,
      NNUNET_TMP_DIR: join(tmp.dir, 'tmp'),
      NNUNET_CATALOG: join(tmp.dir, 'catalog.json'),
      NNUNET_BUNDLED_MODELS: 'none',
      NNUNET_CHUNK_SIZE_BYTES: String(CHUNK),
      NNUNET_ADMIN_TOKEN: ADMIN_TOKEN,
      NNUNET_READ_TOKEN: READ_TOKEN,
    });
    admin = new NnunetClient({ address: server.address, token: ADMIN_TOKEN });
    reader = new NnunetClient({ address: server.address, token: READ_TOKEN });
  });

  after(async () => {
    admin?.close();
    reader?.close();
    await server?.stop();
    await http?.close();
    tmp?.cleanup();
  });

  it('lists the catalog to a read token, saying what can run and what is installed', async () => {
    const models = await reader.listPretrainedModels();
    assert.deepEqual(models.map((m) => [m.name, m.format, m.runnable, m.installed.length]), [
      ['hippo-small', 'PRETRAINED_FORMAT_NNUNETV2_ZIP', true, 0],
      ['hippo-unhashed', 'PRETRAINED_FORMAT_NNUNETV2_ZIP', true, 0],
      ['Task004_Hippocampus', 'PRETRAINED_FORMAT_NNUNETV1_ZIP', false, 0],
    ]);
    assert.equal(models[0].sha256, ZIP_SHA);
    assert.equal(models[1].sha256, '');
    assert.deepEqual(models[0].channels, [{ name: 'MRI', meaning: 'T1-weighted brain MRI crop around the hippocampus' }]);
    assert.deepEqual(models[0].labels.map((l) => [l.name, l.values]), [['background', [0]], ['Anterior', [1]], ['Posterior', [2]]]);
  });

  it('refuses installs it cannot verify or run, before downloading, with clear codes', async () => {
    assert.equal((await code(reader.installPretrainedModel({ catalog_name: 'hippo-small' }))).code, grpc.status.PERMISSION_DENIED);
    const v1 = await code(admin.installPretrainedModel({ catalog_name: 'Task004_Hippocampus' }));
    assert.equal(v1.code, grpc.status.FAILED_PRECONDITION);
    assert.match(v1.details, /nnU-Net v1 model zip .*cannot be installed or run/);
    const unhashed = await code(admin.installPretrainedModel({ catalog_name: 'hippo-unhashed' }));
    assert.equal(unhashed.code, grpc.status.INVALID_ARGUMENT);
    assert.match(unhashed.details, /records no SHA-256 for "hippo-unhashed"/);
    const missing = await code(admin.installPretrainedModel({ catalog_name: 'nope' }));
    assert.equal(missing.code, grpc.status.NOT_FOUND);
    assert.match(missing.details, /available: hippo-small, hippo-unhashed, Task004_Hippocampus/);
    assert.equal((await code(admin.installPretrainedModel({ url: http.url('/hippo.zip') }))).code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(http.requests, [], 'nothing was downloaded');
  });

  it('a wrong SHA-256 for a URL fails with DATA_LOSS and installs nothing', async () => {
    const err = await code(admin.installPretrainedModel({ url: http.url('/plain.zip'), sha256: '0'.repeat(64) }));
    assert.equal(err.code, grpc.status.DATA_LOSS);
    assert.match(err.details, /SHA-256 mismatch/);
    assert.deepEqual(await admin.listModels(), []);
    assert.deepEqual(readdirSync(join(tmp.dir, 'tmp')), []);
  });

  it('installs the catalog entry (resuming the dropped transfer) with streamed progress; the model is READY and not loaded', async () => {
    http.requests.length = 0;
    const progress: InstallProgress[] = [];
    const result = await admin.installPretrainedModel({ catalog_name: 'hippo-small' }, (p) => progress.push(p));
    assert.deepEqual(result.models, [{ dataset: 'Dataset104_HippoDev', trainer: 'nnUNetTrainer_RefSmall', plans: 'nnUNetPlansSmall', configuration: '3d_fullres', folds: ['0'] }]);
    assert.equal(result.sha256, ZIP_SHA);
    assert.equal(result.size_bytes, ZIP.length);
    const downloading = progress.filter((p) => p.stage === 'downloading' && p.bytes_done > 0);
    assert.ok(downloading.length > 0 && downloading.every((p) => p.bytes_total === ZIP.length));
    assert.equal(downloading.at(-1)!.bytes_done, ZIP.length);
    assert.ok(progress.some((p) => p.stage === 'installing' && /verified/.test(p.message)));
    assert.ok(progress.some((p) => p.stage === 'installing' && /installed Dataset104_HippoDev/.test(p.message)));
    assert.deepEqual(readdirSync(join(tmp.dir, 'tmp')), [], 'download folder removed');
    // the loopback server dropped the first connection: the server resumed with a Range request
    assert.equal(http.requests.length, 2);
    assert.match(http.requests[1].range ?? '', /^bytes=[1-9]\d*-$/);

    const pretrained = await reader.listPretrainedModels();
    assert.deepEqual(pretrained[0].installed.map((m) => m.configuration), ['3d_fullres']);
    const [listed] = await reader.listModelStatuses();
    assert.equal(listed.status.state, 'MODEL_STATE_READY');
    assert.equal(listed.status.loaded, false, 'sessions load lazily, on the first Predict');
    assert.deepEqual(listed.status.folds, [{ fold: '0', network: 'model.onnx', problem: '' }]);
    assert.deepEqual(listed.status.channel_names, ['MRI']);
  });

  it('predicts with parity against nnU-Net (voxels identical, probabilities within the parity tolerance)', async () => {
    const out = join(tmp.dir, 'out');
    mkdirSync(out);
    await reader.predictFile([join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_003_0000.nii.gz')], join(out, 'hippocampus_003.nii.gz'), {
      model: { dataset: '104', model_folder: FIXTURE_MODEL_NAME },
      folds: ['0'],
      mirroring: false,
      probabilitiesFile: join(out, 'hippocampus_003.npz'),
    });
    const ours = await readNifti(join(out, 'hippocampus_003.nii.gz'));
    const ref = await readNifti(join(FIXTURE_PREDICTIONS, 'notta', 'hippocampus_003.nii.gz'));
    assert.deepEqual([...ours.data], [...ref.data]);
    const p = (await readNpz(join(out, 'hippocampus_003.npz'))).probabilities.data as Float32Array;
    const r = (await readNpz(join(FIXTURE_PREDICTIONS, 'notta', 'hippocampus_003.npz'))).probabilities.data as Float32Array;
    assert.equal(p.length, r.length);
    let maxDiff = 0;
    for (let i = 0; i < r.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p[i] - r[i]));
    assert.ok(maxDiff < 2e-3, `max probability difference ${maxDiff}`);
    const [listed] = await reader.listModelStatuses();
    assert.equal(listed.status.loaded, true);
  });

  it('reports a fold without a usable network as FAILED, naming the fold', async () => {
    const fold = join(results(), 'Dataset104_HippoDev', FIXTURE_MODEL_NAME, 'fold_1');
    mkdirSync(fold);
    writeFileSync(join(fold, 'checkpoint_latest.pth'), 'x');
    try {
      const details = await reader.getModel({ dataset: '104', model_folder: FIXTURE_MODEL_NAME });
      const status = (details as unknown as { status: { state: string; state_reason: string } }).status;
      assert.equal(status.state, 'MODEL_STATE_FAILED');
      assert.match(status.state_reason, /fold_1: no checkpoint_final\.pth, checkpoint_final\.safetensors or model\.onnx \(only checkpoint_latest\.pth: training has not finished\)/);
    } finally {
      rmSync(fold, { recursive: true });
    }
  });

  it('ExportModel streams a zip in chunks no larger than the server chunk size; it installs into another results root', async () => {
    assert.equal((await code(reader.exportModel({ dataset: '104' }, join(tmp.dir, 'x.zip')))).code, grpc.status.PERMISSION_DENIED);
    const file = join(tmp.dir, 'exported.zip');
    const { header, chunks } = await admin.exportModel({ dataset: '104', trainer: 'nnUNetTrainer_RefSmall', plans: 'nnUNetPlansSmall', configurations: ['3d_fullres'], folds: ['0'] }, file);
    assert.equal(chunks, Math.ceil(header.size_bytes / CHUNK), 'every chunk but the last is exactly the chunk size');
    assert.ok(header.members.includes(`Dataset104_HippoDev/${FIXTURE_MODEL_NAME}/fold_0/checkpoint_final.pth`));
    assert.ok(header.members.includes(`Dataset104_HippoDev/${FIXTURE_MODEL_NAME}/fold_0/model.onnx`));
    const installed = await installModelZip(file, join(tmp.dir, 'elsewhere'));
    assert.deepEqual(installed.map((m) => m.model), [FIXTURE_MODEL_NAME]);
    const err = await code(admin.exportModel({ dataset: '104', trainer: 'nnUNetTrainer_RefSmall', plans: 'nnUNetPlansSmall', folds: ['3'] }, join(tmp.dir, 'y.zip')));
    assert.match(err.details, /fold\(s\) 3 of .* do not exist \(available: 0\)/);
    assert.ok(!existsSync(join(tmp.dir, 'y.zip')));
    assert.deepEqual(readdirSync(join(tmp.dir, 'tmp')), []);
  });
});
