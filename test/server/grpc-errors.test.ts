// Bad input and bad clients against the real server process: every refusal has the specific
// status code (and names the field), nothing half-written is left behind, and the server stays
// healthy after clients that vanish mid-upload or mid-prediction.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient } from '../../client/sdk/index.js';
import { writeNifti } from '../../server/io/nifti.js';
import { nnunetV1 } from '../../server/rpc/protos.js';
import { makePhantom } from '../fixtures/synthetic.js';
import { HIPPOCAMPUS, tempDir } from '../helpers.js';
import { ADMIN_TOKEN, healthStatus, MODEL_FOLDER, MODEL_ZIP, READ_TOKEN, startServerProcess, type ServerProcess } from './server-process.js';

const HIPPO_CASE = join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_003_0000.nii.gz');
const MODEL = { dataset: '104', model_folder: MODEL_FOLDER };

const bearer = (token: string) => {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

/** All entries under a folder, hidden ones included (temporary files start with a dot). */
function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...allFiles(join(dir, entry.name)).map((f) => `${entry.name}/${f}`));
    else out.push(entry.name);
  }
  return out;
}

async function eventually(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rejection(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  return assert.fail('expected the call to fail');
}

describe('server refusals and vanishing clients', function () {
  this.timeout(300_000);
  let server: ServerProcess;
  let tmp: ReturnType<typeof tempDir>;
  let admin: NnunetClient;
  let datasets: grpc.Client;
  let inference: grpc.Client;
  let spool: string;
  let imagesTr: string;

  /** Opens UploadCase with raw messages; resolves with the status. */
  function rawUpload(messages: object[], o: { cancelAfterMs?: number } = {}): Promise<grpc.ServiceError | null> {
    return new Promise((resolve) => {
      const call = (datasets as unknown as { UploadCase(md: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void): grpc.ClientWritableStream<object> }).UploadCase(bearer(ADMIN_TOKEN), (err) => resolve(err));
      for (const m of messages) call.write(m);
      if (o.cancelAfterMs !== undefined) setTimeout(() => call.cancel(), o.cancelAfterMs);
      else call.end();
    });
  }

  function rawPredict(messages: object[]): grpc.ClientDuplexStream<object, object> {
    const call = (inference as unknown as { Predict(md: grpc.Metadata): grpc.ClientDuplexStream<object, object> }).Predict(bearer(READ_TOKEN));
    call.on('data', () => {});
    // The status event reports the outcome; an unhandled 'error' would crash the test process.
    call.on('error', () => {});
    for (const m of messages) call.write(m);
    return call;
  }

  const predictStatus = (call: grpc.ClientDuplexStream<object, object>) =>
    new Promise<grpc.StatusObject>((resolve) => {
      call.on('status', resolve);
    });

  before(async () => {
    tmp = tempDir();
    spool = join(tmp.dir, 'spool');
    mkdirSync(spool);
    server = await startServerProcess({
      NNUNET_HOME: tmp.dir,
      NNUNET_TMP_DIR: spool,
      NNUNET_ADMIN_TOKEN: ADMIN_TOKEN,
      NNUNET_READ_TOKEN: READ_TOKEN,
      NNUNET_MAX_CONCURRENT_PREDICTIONS: '1',
      NNUNET_MAX_QUEUED_PREDICTIONS: '0',
    });
    admin = new NnunetClient({ address: server.address, token: ADMIN_TOKEN });
    await admin.createDataset({ id: 8, name: 'Refusals', channel_names: ['T2'], labels: [{ name: 'background', values: [0] }, { name: 'organ', values: [1] }] });
    await admin.installModel(MODEL_ZIP);
    imagesTr = join(tmp.dir, 'nnUNet_raw', 'Dataset008_Refusals', 'imagesTr');
    datasets = new (nnunetV1().DatasetService as grpc.ServiceClientConstructor)(server.address, grpc.credentials.createInsecure());
    inference = new (nnunetV1().InferenceService as grpc.ServiceClientConstructor)(server.address, grpc.credentials.createInsecure());
  });

  after(async () => {
    admin?.close();
    datasets?.close();
    inference?.close();
    await server?.stop();
    tmp?.cleanup();
  });

  it('needs a token, and an admin token for anything that changes data', async () => {
    const anonymous = new NnunetClient({ address: server.address });
    const reader = new NnunetClient({ address: server.address, token: READ_TOKEN });
    const forged = new NnunetClient({ address: server.address, token: 'not-a-token-of-this-server' });
    try {
      assert.equal((await rejection(anonymous.listModels())).code, grpc.status.UNAUTHENTICATED);
      assert.equal((await rejection(forged.listModels())).code, grpc.status.UNAUTHENTICATED);
      assert.equal((await reader.listModels()).length, 1);
      const denied = await rejection(reader.createDataset({ id: 9, name: 'Nope', channel_names: ['CT'], labels: [{ name: 'background', values: [0] }] }));
      assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
      assert.equal((await rejection(reader.installModel(MODEL_ZIP))).code, grpc.status.PERMISSION_DENIED);
      assert.equal((await rejection(reader.deleteModel(MODEL))).code, grpc.status.PERMISSION_DENIED);
      assert.equal((await rejection(anonymous.uploadCaseFile('8', 'case_a', HIPPO_CASE, {}))).code, grpc.status.UNAUTHENTICATED);
      // Probes cannot send tokens: health stays open.
      assert.equal(await healthStatus(server.address), 'SERVING');
    } finally {
      anonymous.close();
      reader.close();
      forged.close();
    }
  });

  it('refuses path traversal in case and dataset names, naming the field', async () => {
    const err = await rejection(admin.uploadCaseFile('8', '../evil', HIPPO_CASE, {}));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(err.metadata.get('nnunet-error-field'), ['header.case_id']);
    assert.equal((await rejection(admin.uploadCaseFile('../../etc', 'case_a', HIPPO_CASE, {}))).code, grpc.status.INVALID_ARGUMENT);
    assert.equal((await rejection(admin.uploadCaseFile('8', '.hidden', HIPPO_CASE, {}))).code, grpc.status.INVALID_ARGUMENT);
    assert.equal((await rejection(admin.predictFile([HIPPO_CASE], join(tmp.dir, 'x.nii.gz'), { model: { dataset: '104', model_folder: '..__..__..' } }))).code, grpc.status.INVALID_ARGUMENT);
    assert.equal((await rejection(admin.deleteCase('8', 'a/../../b'))).code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(allFiles(imagesTr), []);
  });

  it('refuses a corrupt NIfTI with INVALID_ARGUMENT and stores nothing', async () => {
    const corrupt = join(tmp.dir, 'corrupt.nii.gz');
    writeFileSync(corrupt, Buffer.from('this is not a NIfTI file, whatever its name says'.repeat(20)));
    const err = await rejection(admin.uploadCaseFile('8', 'case_a', corrupt, {}));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT, err.details);
    assert.deepEqual(allFiles(imagesTr), []);
  });

  it('refuses a checksum mismatch with DATA_LOSS and stores nothing', async () => {
    const bytes = Buffer.from('0123456789');
    const err = await rawUpload([{ header: { dataset: '8', case_id: 'case_a', size_bytes: bytes.length } }, { chunk: bytes }, { sha256: '0'.repeat(64) }]);
    assert.equal(err?.code, grpc.status.DATA_LOSS);
    assert.match(err!.details, /SHA-256 mismatch/);
    assert.deepEqual(allFiles(imagesTr), []);
  });

  it('refuses a 2 GiB declared upload with RESOURCE_EXHAUSTED before receiving anything', async () => {
    const started = performance.now();
    const err = await rawUpload([{ header: { dataset: '8', case_id: 'case_a', size_bytes: 2 * 1024 ** 3 } }], { cancelAfterMs: 10_000 });
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.deepEqual(err!.metadata.get('nnunet-error-field'), ['header.size_bytes']);
    assert.ok(performance.now() - started < 5000, 'answered on the header');
    assert.deepEqual(allFiles(imagesTr), []);
    const predict = rawPredict([{ header: { model: MODEL, channel_sizes_bytes: [2 * 1024 ** 3] } }]);
    assert.equal((await predictStatus(predict)).code, grpc.status.RESOURCE_EXHAUSTED);
  });

  it('answers NOT_FOUND for an unknown model or fold, and writes no output', async () => {
    const out = join(tmp.dir, 'unknown.nii.gz');
    const err = await rejection(admin.predictFile([HIPPO_CASE], out, { model: { dataset: '999', configuration: '3d_fullres' } }));
    assert.equal(err.code, grpc.status.NOT_FOUND);
    assert.equal((await rejection(admin.predictFile([HIPPO_CASE], out, { model: MODEL, folds: ['3'] }))).code, grpc.status.NOT_FOUND);
    assert.equal((await rejection(admin.getModel({ dataset: '104', configuration: '2d' }))).code, grpc.status.NOT_FOUND);
    assert.ok(!readdirSync(tmp.dir).some((f) => f.includes('unknown')));
  });

  it('leaves nothing behind when a client disconnects mid-upload, and stays healthy', async () => {
    const err = await rawUpload([{ header: { dataset: '8', case_id: 'case_b', size_bytes: 1_000_000 } }, { chunk: Buffer.alloc(4096, 7) }], { cancelAfterMs: 300 });
    assert.equal(err?.code, grpc.status.CANCELLED);
    await eventually(() => allFiles(imagesTr).length === 0, 'the temporary upload is removed');
    assert.equal(await healthStatus(server.address), 'SERVING');
  });

  it('refuses a Predict past the admission limit with RESOURCE_EXHAUSTED and a retry hint; a vanished client frees its slot', async () => {
    // Holds the only admission ticket: header and part of the input, then silence.
    const holder = rawPredict([{ header: { model: MODEL, channel_sizes_bytes: [10_000_000] } }, { chunk: { channel: 0, data: Buffer.alloc(1000) } }]);
    await eventually(() => readdirSync(spool).length === 1, 'the first call spools its input');
    const refused = await predictStatus(rawPredict([{ header: { model: MODEL, channel_sizes_bytes: [1000] } }]));
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(refused.details, /NNUNET_MAX_CONCURRENT_PREDICTIONS=1/);
    assert.ok(Number(refused.metadata.get('grpc-retry-pushback-ms')[0]) >= 1000);
    holder.cancel();
    await eventually(() => readdirSync(spool).length === 0, 'the spool folder of the cancelled call is removed');
    const result = await admin.predictFile([HIPPO_CASE], join(tmp.dir, 'after.nii.gz'), { model: MODEL, mirroring: false });
    assert.ok(result.summary.voxels > 0);
  });

  it('stops a prediction whose client went away, removes its files, and serves the next one', async () => {
    // Large enough for dozens of sliding-window tiles, so the abort lands mid-prediction.
    const big = join(tmp.dir, 'big_0000.nii.gz');
    const phantom = makePhantom({ shape: [64, 128, 96], seed: 3 });
    await writeNifti(big, { data: phantom.images[0], shape: phantom.shape, channels: 1, spacing: phantom.spacing, affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] }, { datatype: 'float32' });
    const controller = new AbortController();
    const aborted = admin.predictFile([big], join(tmp.dir, 'aborted.nii.gz'), {
      model: MODEL,
      onProgress: (p) => {
        if (p.stage === 'PREDICT_STAGE_PREDICTING') controller.abort();
      },
      signal: controller.signal,
    });
    assert.equal((await rejection(aborted)).code, grpc.status.CANCELLED);
    await eventually(() => server.logs.some((l) => l.event === 'predict_cancelled'), 'the server logs the cancelled prediction', 30_000);
    // The sliding window stopped at the next tile: it did not run to the end.
    assert.ok(!server.logs.some((l) => l.event === 'predicted' && l.voxels === 64 * 128 * 96));
    await eventually(() => readdirSync(spool).length === 0, 'the spool folder is removed');
    assert.ok(!readdirSync(tmp.dir).some((f) => f.includes('aborted')), 'no partial output');
    assert.equal(await healthStatus(server.address), 'SERVING');
    const result = await admin.predictFile([HIPPO_CASE], join(tmp.dir, 'next.nii.gz'), { model: MODEL, mirroring: false });
    assert.ok(result.summary.voxels > 0);
    const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    assert.match(metrics, /nnunet_predictions_rejected_total 1/);
    assert.match(metrics, /grpc_server_handled_total\{grpc_type="bidi_stream",grpc_service="nnunet.v1.InferenceService",grpc_method="Predict",grpc_code="CANCELLED"\} [1-9]/);
    assert.match(metrics, /nnunet_predictions_in_flight 0/);
  });
});
