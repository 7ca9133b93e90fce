// Graceful shutdown under load: SIGTERM during a prediction marks health NOT_SERVING, refuses new
// calls, lets the running Predict finish and stream its result, then exits 0.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient } from '../../client/sdk/index.js';
import { writeNifti } from '../../server/io/nifti.js';
import { makePhantom } from '../fixtures/synthetic.js';
import { tempDir } from '../helpers.js';
import { MODEL_FOLDER, MODEL_ZIP, startServerProcess, type ServerProcess } from './server-process.js';

describe('graceful shutdown', function () {
  this.timeout(300_000);
  let tmp: ReturnType<typeof tempDir>;
  let server: ServerProcess;

  before(async () => {
    tmp = tempDir();
    server = await startServerProcess({ NNUNET_HOME: tmp.dir, NNUNET_SHUTDOWN_GRACE_SECONDS: '120' });
  });

  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  it('finishes the running prediction after SIGTERM, refuses new calls, and exits 0', async () => {
    const client = new NnunetClient({ address: server.address });
    await client.installModel(MODEL_ZIP);
    const input = join(tmp.dir, 'big_0000.nii.gz');
    const phantom = makePhantom({ shape: [48, 96, 80], seed: 5 });
    await writeNifti(input, { data: phantom.images[0], shape: phantom.shape, channels: 1, spacing: phantom.spacing, affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] }, { datatype: 'float32' });
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    let signalled = false;
    const late = new NnunetClient({ address: server.address });
    let lateCall: Promise<grpc.ServiceError | undefined> | undefined;
    const result = await client.predictFile([input], join(tmp.dir, 'big.nii.gz'), {
      model: { dataset: '104', model_folder: MODEL_FOLDER },
      mirroring: false,
      onProgress: (p) => {
        if (p.stage !== 'PREDICT_STAGE_PREDICTING' || signalled) return;
        signalled = true;
        server.child.kill('SIGTERM');
        // A call started once draining began (on a fresh connection) must not be served.
        lateCall = (async () => {
          while (!server.logs.some((l) => l.event === 'draining')) await new Promise((r) => setTimeout(r, 20));
          return late.serverInfo();
        })().then(
          () => undefined,
          (e: grpc.ServiceError) => e,
        );
      },
    });
    assert.ok(signalled, 'the prediction reported progress');
    assert.equal(result.summary.voxels, 48 * 96 * 80);
    const lateError = await lateCall!;
    assert.equal(lateError?.code, grpc.status.UNAVAILABLE);
    client.close();
    late.close();
    assert.equal(await exited, 0);
    assert.ok(server.logs.some((l) => l.event === 'draining'));
    assert.ok(server.logs.findIndex((l) => l.event === 'draining') < server.logs.findIndex((l) => l.event === 'predicted'), 'drain began while predicting');
  });
});
