// Predict with its CPU stages in the worker pool: a client that leaves while its case is being
// preprocessed in a worker thread aborts that task; the server stays healthy, removes the call's
// files, and the pool serves the next prediction.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient } from '../../client/sdk/index.js';
import { writeNifti } from '../../server/io/nifti.js';
import { makePhantom } from '../fixtures/synthetic.js';
import { HIPPOCAMPUS, tempDir } from '../helpers.js';
import { healthStatus, MODEL_FOLDER, MODEL_ZIP, startServerProcess, type ServerProcess } from './server-process.js';

const MODEL = { dataset: '104', model_folder: MODEL_FOLDER };

async function eventually(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Predict with the worker pool (server process)', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let spool: string;
  let server: ServerProcess;
  let client: NnunetClient;

  before(async () => {
    tmp = tempDir();
    spool = join(tmp.dir, 'spool');
    mkdirSync(spool);
    server = await startServerProcess({ NNUNET_HOME: tmp.dir, NNUNET_TMP_DIR: spool, NNUNET_PREPROCESS_WORKERS: '1' });
    client = new NnunetClient({ address: server.address });
    await client.installModel(MODEL_ZIP);
  });

  after(async () => {
    client?.close();
    await server?.stop();
    tmp?.cleanup();
  });

  it('aborts the preprocessing of a client that left, removes its files and serves the next call', async () => {
    const small = join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_003_0000.nii.gz');
    const before = await client.predictFile([small], join(tmp.dir, 'before.nii.gz'), { model: MODEL, mirroring: false });
    // Resampled from 1.5 mm to the model's 1 mm: seconds of preprocessing in the worker.
    const big = join(tmp.dir, 'big_0000.nii.gz');
    const phantom = makePhantom({ shape: [96, 160, 160], spacing: [1.5, 1.5, 1.5], seed: 11 });
    const affine = [[1.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 1.5, 0], [0, 0, 0, 1]];
    await writeNifti(big, { data: phantom.images[0], shape: phantom.shape, channels: 1, spacing: phantom.spacing, affine }, { datatype: 'float32' });
    const size = statSync(big).size;
    const spooled = () => readdirSync(spool).some((d) => readdirSync(join(spool, d)).some((f) => statSync(join(spool, d, f)).size === size));

    const controller = new AbortController();
    const stages: string[] = [];
    const call = client.predictFile([big], join(tmp.dir, 'left.nii.gz'), { model: MODEL, signal: controller.signal, onProgress: (p) => stages.push(p.stage) });
    call.catch(() => {});
    // The whole input is on the server's disk: it is preprocessing now (the model is cached).
    await eventually(spooled, 'the server spools the whole input');
    controller.abort();
    const err = (await call.then(
      () => assert.fail('the call should fail'),
      (e: grpc.ServiceError) => e,
    )) as grpc.ServiceError;
    assert.equal(err.code, grpc.status.CANCELLED);
    await eventually(() => server.logs.some((l) => l.event === 'predict_cancelled'), 'the server logs the cancelled prediction', 30_000);
    assert.ok(!stages.includes('PREDICT_STAGE_PREDICTING'), `left before the network ran (${stages.join(', ')})`);
    await eventually(() => readdirSync(spool).length === 0, 'the spool folder is removed');
    assert.equal(await healthStatus(server.address), 'SERVING');

    const after = await client.predictFile([small], join(tmp.dir, 'after.nii.gz'), { model: MODEL, mirroring: false });
    assert.equal(after.summary.segmentation_sha256, before.summary.segmentation_sha256, 'the pool predicts the same after a worker was stopped');
  });
});
