import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { nnunetV1 } from '../../server/rpc/protos.js';
import { REPO_ROOT, tempDir } from '../helpers.js';

interface Started {
  child: ChildProcess;
  grpcPort: number;
  metricsPort: number;
}

/** Starts the real server process on ephemeral loopback ports and waits for its "listening" log line. */
function startServerProcess(env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'server', 'main.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, NNUNET_HOST: '127.0.0.1', NNUNET_PORT: '0', NNUNET_METRICS_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not log "listening" within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`server exited early with code ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { event?: string; grpcPort?: number; metricsPort?: number };
      if (entry.event === 'listening') {
        clearTimeout(timer);
        resolve({ child, grpcPort: entry.grpcPort!, metricsPort: entry.metricsPort! });
      }
    });
  });
}

const call = <T>(client: grpc.Client, method: string, request: object): Promise<T> =>
  new Promise((resolve, reject) => {
    (client as unknown as Record<string, (r: object, cb: (e: grpc.ServiceError | null, v: T) => void) => void>)[method](request, (err, value) =>
      err ? reject(err) : resolve(value),
    );
  });

describe('server process (real gRPC on loopback)', function () {
  this.timeout(60_000);
  let server: Started;
  let tmp: ReturnType<typeof tempDir>;
  let address: string;

  before(async () => {
    tmp = tempDir();
    mkdirSync(join(tmp.dir, 'nnUNet_results', 'Dataset004_Hippocampus', 'nnUNetTrainer__nnUNetPlans__3d_fullres', 'fold_0'), { recursive: true });
    mkdirSync(join(tmp.dir, 'nnUNet_results', 'Dataset004_Hippocampus', 'nnUNetTrainer__nnUNetPlans__3d_fullres', 'fold_all'));
    server = await startServerProcess({ NNUNET_HOME: tmp.dir });
    address = `127.0.0.1:${server.grpcPort}`;
  });

  after(() => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    tmp?.cleanup();
  });

  it('answers grpc.health.v1 Check with SERVING', async () => {
    const def = protoLoader.loadSync(healthProtoPath, { enums: String });
    const Health = (grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).health as grpc.GrpcObject;
    const client = new ((Health.v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure());
    const res = await call<{ status: string }>(client, 'Check', { service: '' });
    assert.equal(res.status, 'SERVING');
    const missing = await call(client, 'Check', { service: 'no.such.Service' }).catch((e: grpc.ServiceError) => e);
    assert.equal((missing as grpc.ServiceError).code, grpc.status.NOT_FOUND);
    client.close();
  });

  it('reports its version and limits through ServerService.GetServerInfo', async () => {
    const client = new (nnunetV1().ServerService as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure());
    const info = await call<{ version: string; engines: string[]; max_voxels: number }>(client, 'GetServerInfo', {});
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.ok(info.engines.includes('onnxruntime-cpu'), `engines: ${info.engines}`);
    assert.equal(info.max_voxels, 1024 ** 3);
    client.close();
  });

  it('lists the model folders of nnUNet_results through ModelService.ListModels', async () => {
    const client = new (nnunetV1().ModelService as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure());
    const res = await call<{ models: object[] }>(client, 'ListModels', {});
    assert.deepEqual(res.models, [
      { dataset: 'Dataset004_Hippocampus', trainer: 'nnUNetTrainer', plans: 'nnUNetPlans', configuration: '3d_fullres', folds: ['0', 'all'] },
    ]);
    assert.deepEqual((await call<{ models: object[] }>(client, 'ListModels', { dataset: '5' })).models, []);
    client.close();
  });

  it('serves Prometheus metrics on its own port', async () => {
    const res = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /process_cpu_user_seconds_total/);
    assert.equal((await fetch(`http://127.0.0.1:${server.metricsPort}/other`)).status, 404);
  });

  it('exits 0 on SIGTERM after draining', async () => {
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
