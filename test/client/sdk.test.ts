// The SDK against the real server process: create a dataset, upload synthetic cases, verify it,
// install nnU-Net's real model zip, predict a Hippocampus case streaming in and out (identical
// voxels to nnU-Net without mirroring), then see the calls in /metrics, health, and the API
// listed through reflection by a client that is not ours (buf curl).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NnunetClient, type PredictProgress } from '../../client/sdk/index.js';
import { decodeNifti, readNifti } from '../../server/io/nifti.js';
import { decodeNpz, readNpz } from '../../server/io/npz.js';
import { writeSyntheticDataset } from '../fixtures/synthetic.js';
import { HIPPOCAMPUS, REPO_ROOT, SHARED, tempDir } from '../helpers.js';
import { ADMIN_TOKEN, healthStatus, MODEL_FOLDER, MODEL_ZIP, READ_TOKEN, startServerProcess, type ServerProcess } from '../server/server-process.js';

describe('client SDK against the server process', function () {
  this.timeout(300_000);
  let server: ServerProcess;
  let tmp: ReturnType<typeof tempDir>;
  let admin: NnunetClient;

  before(async () => {
    tmp = tempDir();
    mkdirSync(join(tmp.dir, 'tmp'));
    server = await startServerProcess({ NNUNET_HOME: tmp.dir, NNUNET_TMP_DIR: join(tmp.dir, 'tmp'), NNUNET_ADMIN_TOKEN: ADMIN_TOKEN, NNUNET_READ_TOKEN: READ_TOKEN });
    admin = new NnunetClient({ address: server.address, token: ADMIN_TOKEN });
  });

  after(async () => {
    admin?.close();
    await server?.stop();
    tmp?.cleanup();
  });

  it('reports version, limits and that auth is on', async () => {
    const info = await admin.serverInfo();
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.equal(info.auth_enabled, true);
    assert.equal(info.chunk_size_bytes, 1024 * 1024);
    assert.ok(info.max_receive_message_bytes > info.chunk_size_bytes);
    // Typed fields the SDK exposes: ports, devices and workers.
    assert.equal(info.ports.grpc, server.grpcPort);
    assert.ok(Number.isInteger(info.cuda_device_count) && info.cuda_device_count >= 0);
    assert.ok(info.onnxruntime_execution_providers.some((p) => p.name.toLowerCase() === 'cpu'), JSON.stringify(info.onnxruntime_execution_providers));
    assert.ok(info.max_concurrent_trainings >= 1);
  });

  it('creates a dataset, uploads synthetic cases with their labels, and verifies it', async () => {
    const dataset = await admin.createDataset({
      id: 7,
      name: 'Phantoms',
      channel_names: ['T2'],
      labels: [
        { name: 'background', values: [0] },
        { name: 'label_1', values: [1] },
        { name: 'label_2', values: [2] },
      ],
    });
    assert.equal(dataset.name, 'Dataset007_Phantoms');
    assert.equal(dataset.num_training, 0);
    const source = await writeSyntheticDataset(join(tmp.dir, 'source'), { id: 7, name: 'Phantoms', cases: 3, shape: [12, 16, 20], labels: 2 });
    const uploaded = await admin.uploadFolder('7', source);
    assert.deepEqual(uploaded, ['case_000', 'case_001', 'case_002']);
    const got = await admin.getDataset('Dataset007_Phantoms');
    assert.equal(got.num_training, 3);
    assert.deepEqual(
      got.cases.map((c) => [c.case_id, c.channels, c.has_label]),
      [
        ['case_000', [0], true],
        ['case_001', [0], true],
        ['case_002', [0], true],
      ],
    );
    const report = await admin.verifyDataset('7');
    assert.deepEqual(report.errors, []);
    assert.equal(report.ok, true);
    assert.equal(report.cases_checked, 3);
    assert.deepEqual((await admin.listDatasets()).map((d) => d.name), ['Dataset007_Phantoms']);
    // Deleting a case removes its files and keeps numTraining right.
    assert.deepEqual(await admin.deleteCase('7', 'case_002'), ['imagesTr/case_002_0000.nii.gz', 'labelsTr/case_002.nii.gz']);
    assert.equal((await admin.getDataset('7')).num_training, 2);
    assert.equal((await admin.verifyDataset('7')).ok, true);
  });

  it("installs nnU-Net's model zip and predicts a case streaming in and out, voxel-identical to nnU-Net", async () => {
    const models = await admin.installModel(MODEL_ZIP);
    assert.deepEqual(models, [{ dataset: 'Dataset104_HippoDev', trainer: 'nnUNetTrainer_RefSmall', plans: 'nnUNetPlansSmall', configuration: '3d_fullres', folds: ['0'] }]);
    const details = await admin.getModel({ dataset: '104', model_folder: MODEL_FOLDER });
    assert.equal(details.channel_names.length, 1);
    assert.deepEqual(details.labels.map((l) => l.name), ['background', 'Anterior', 'Posterior']);

    const reader = new NnunetClient({ address: server.address, token: READ_TOKEN, chunkSizeBytes: 4096 });
    const out = join(tmp.dir, 'out', 'hippocampus_003.nii.gz');
    mkdirSync(join(tmp.dir, 'out'));
    const progress: PredictProgress[] = [];
    const result = await reader.predictFile([join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_003_0000.nii.gz')], out, {
      model: { dataset: 'Dataset104_HippoDev', trainer: 'nnUNetTrainer_RefSmall', plans: 'nnUNetPlansSmall', configuration: '3d_fullres' },
      folds: ['0'],
      mirroring: false,
      probabilitiesFile: join(tmp.dir, 'out', 'hippocampus_003.npz'),
      onProgress: (p) => progress.push(p),
    });
    reader.close();
    const ours = await readNifti(out);
    const reference = await readNifti(join(SHARED, 'fixtures', 'nnunetv2_model', 'predictions', 'notta', 'hippocampus_003.nii.gz'));
    assert.deepEqual(ours.shape, reference.shape);
    assert.deepEqual([...ours.data], [...reference.data]);
    assert.deepEqual(result.geometry.shape, [...reference.shape].reverse());
    const probabilities = (await readNpz(join(tmp.dir, 'out', 'hippocampus_003.npz'))).probabilities;
    assert.deepEqual(probabilities.shape, [3, ...reference.shape]);
    assert.ok(progress.some((p) => p.stage === 'PREDICT_STAGE_PREDICTING' && p.done === p.total));
    assert.ok(result.summary.predict_seconds > 0);
    assert.deepEqual(readdirSync(join(tmp.dir, 'tmp')), [], 'the per-call spool folder is removed');
    assert.deepEqual(readdirSync(join(tmp.dir, 'out')).sort(), ['hippocampus_003.nii.gz', 'hippocampus_003.npz'], 'no partial files left by the SDK');
  });

  it('counts the calls in /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    assert.match(text, /grpc_server_started_total\{grpc_type="bidi_stream",grpc_service="nnunet.v1.InferenceService",grpc_method="Predict"\} 1/);
    assert.match(text, /grpc_server_handled_total\{grpc_type="bidi_stream",grpc_service="nnunet.v1.InferenceService",grpc_method="Predict",grpc_code="OK"\} 1/);
    assert.match(text, /grpc_server_handled_total\{grpc_type="client_stream",grpc_service="nnunet.v1.DatasetService",grpc_method="UploadCase",grpc_code="OK"\} 6/);
    assert.match(text, /grpc_server_handling_seconds_bucket\{le="14400",grpc_type="unary",grpc_service="nnunet.v1.ServerService",grpc_method="GetServerInfo"\} 1/);
    assert.match(text, /nnunet_inference_seconds_count\{stage="predict"\} 1/);
    assert.match(text, /nnunet_inference_voxels_total \d+/);
    assert.match(text, /nnunet_loaded_models 1/);
    assert.match(text, /nnunet_received_bytes_total\{grpc_method="Predict"\} \d+/);
    assert.match(text, /process_resident_memory_bytes/);
  });

  it('predicts voxels sent RAW with their geometry (as a PACS bridge would), identical to the NIfTI path', async () => {
    const image = await readNifti(join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_003_0000.nii.gz'));
    const reference = await readNifti(join(SHARED, 'fixtures', 'nnunetv2_model', 'predictions', 'notta', 'hippocampus_003.nii.gz'));
    // NiftiImage keeps (k, j, i) with i fastest: the bytes are already in NIfTI order.
    const result = await admin.predictVolume(
      { channels: [image.data], shape: [image.shape[2], image.shape[1], image.shape[0]], affine: image.affine },
      { model: { dataset: '104', model_folder: MODEL_FOLDER }, mirroring: false, probabilities: true },
    );
    const segmentation = decodeNifti(result.segmentation, 'raw-result.nii.gz');
    assert.deepEqual([...segmentation.data], [...reference.data]);
    assert.deepEqual(segmentation.affine, image.affine);
    assert.equal(decodeNpz(result.probabilities!).probabilities.shape[0], 3);
  });

  it('is SERVING on grpc.health.v1, and buf curl lists every method through reflection', async () => {
    assert.equal(await healthStatus(server.address), 'SERVING');
    assert.equal(await healthStatus(server.address, 'nnunet.v1.InferenceService'), 'SERVING');
    const { stdout } = await promisify(execFile)(join(REPO_ROOT, 'node_modules', '.bin', 'buf'), ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-methods', `http://${server.address}`]);
    const methods = stdout.trim().split('\n');
    for (const m of ['nnunet.v1.InferenceService/Predict', 'nnunet.v1.DatasetService/UploadCase', 'nnunet.v1.ModelService/InstallModel', 'nnunet.v1.TrainingService/TrainFold', 'grpc.health.v1.Health/Check']) {
      assert.ok(methods.includes(m), `${m} in ${methods.join(', ')}`);
    }
  });

  it('deletes a model', async () => {
    await admin.deleteModel({ dataset: '104', model_folder: MODEL_FOLDER });
    assert.deepEqual(await admin.listModels(), []);
    assert.equal(existsSync(join(tmp.dir, 'nnUNet_results', 'Dataset104_HippoDev', MODEL_FOLDER)), false);
  });
});
