// The public API's .proto files: lint-clean under buf's STANDARD rules, loadable by
// @grpc/proto-loader, and every RPC of the services the server owns answered by a handler.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as grpc from '@grpc/grpc-js';
import { nnunetV1, serviceDefinition } from '../../server/rpc/protos.js';
import { REPO_ROOT } from '../helpers.js';

describe('protos/nnunet/v1', function () {
  this.timeout(60_000);

  it('passes buf lint (STANDARD)', async () => {
    const buf = join(REPO_ROOT, 'node_modules', '.bin', 'buf');
    const { stdout, stderr } = await promisify(execFile)(buf, ['lint', 'protos'], { cwd: REPO_ROOT });
    assert.equal(stdout + stderr, '');
  });

  it('loads with proto-loader and defines the five services', () => {
    const v1 = nnunetV1();
    for (const name of ['ServerService', 'ModelService', 'DatasetService', 'InferenceService', 'TrainingService']) {
      assert.equal(typeof v1[name], 'function', name);
    }
    const predict = serviceDefinition('InferenceService').Predict;
    assert.ok(predict.requestStream && predict.responseStream, 'Predict is bidirectional');
    const upload = serviceDefinition('DatasetService').UploadCase;
    assert.ok(upload.requestStream && !upload.responseStream, 'UploadCase is client streaming');
    const train = serviceDefinition('TrainingService').TrainFold;
    assert.ok(!train.requestStream && train.responseStream, 'TrainFold streams job events');
  });

  it('round-trips a chunk as bytes and int64 sizes as numbers', () => {
    const def = serviceDefinition('InferenceService').Predict as grpc.MethodDefinition<object, object>;
    const message = { chunk: { channel: 1, data: Buffer.from([1, 2, 3]) } };
    const back = def.requestDeserialize(def.requestSerialize(message)) as { chunk: { channel: number; data: Buffer } };
    assert.deepEqual([...back.chunk.data], [1, 2, 3]);
    const header = def.requestDeserialize(def.requestSerialize({ header: { channel_sizes_bytes: [3 * 1024 ** 3] } })) as { header: { channel_sizes_bytes: number[]; mirroring?: boolean } };
    assert.deepEqual(header.header.channel_sizes_bytes, [3 * 1024 ** 3]);
    assert.equal(header.header.mirroring, undefined, 'unset optional mirroring stays unset (nnU-Net default: on)');
  });
});
