// The plaintext health port (NNUNET_HEALTH_PORT) for Kubernetes gRPC probes, which cannot do TLS:
// with mTLS on the main port, grpc.health.v1 answers there without any certificate, nothing else
// is served there, and draining after SIGTERM shows NOT_SERVING on it before the port closes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { NnunetClient } from '../../client/sdk/index.js';
import { tempDir } from '../helpers.js';
import { hasOpenssl, makePki, mtlsServerEnv } from './pki.js';
import { healthStatus, startServerProcess, type ServerProcess } from './server-process.js';

function healthClient(address: string): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const def = protoLoader.loadSync(healthProtoPath, { enums: String });
  const Health = (((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor;
  return new Health(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

(hasOpenssl ? describe : describe.skip)('plaintext health port beside an mTLS server', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof tempDir>;
  let server: ServerProcess;
  let healthAddress: string;
  const file = (name: string) => readFileSync(join(tmp.dir, name));

  before(async () => {
    tmp = tempDir();
    makePki(tmp.dir);
    server = await startServerProcess({
      NNUNET_HOME: tmp.dir,
      ...mtlsServerEnv(tmp.dir),
      NNUNET_HEALTH_PORT: '0',
    });
    const port = server.logs.find((l) => l.event === 'listening')?.healthPort;
    assert.ok(typeof port === 'number' && port > 0 && port !== server.grpcPort, `the listening line names the health port (${String(port)})`);
    healthAddress = `127.0.0.1:${port}`;
  });

  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  it('answers a plaintext Check with SERVING, for the server and for each service, while the main port refuses plaintext', async () => {
    assert.equal(await healthStatus(healthAddress), 'SERVING');
    assert.equal(await healthStatus(healthAddress, 'nnunet.v1.InferenceService'), 'SERVING');
    await assert.rejects(healthStatus(server.address), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
  });

  it('serves nothing but health there: an nnunet call on the health port is UNIMPLEMENTED', async () => {
    const client = new NnunetClient({ address: healthAddress, tls: false });
    try {
      await assert.rejects(client.serverInfo(), (err: grpc.ServiceError) => err.code === grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });

  it('reports its ports, accelerators, training concurrency and worker pool in GetServerInfo (over mTLS)', async () => {
    const client = new NnunetClient({
      address: server.address,
      tls: { ca: file('ca.crt'), cert: file('client.crt'), key: file('client.key') },
      channelOptions: { 'grpc.ssl_target_name_override': 'localhost' },
    });
    try {
      const info = (await client.serverInfo()) as unknown as {
        ports: { grpc: number; metrics: number; health: number };
        cuda_device_count: number;
        onnxruntime_execution_providers: { name: string; bundled: boolean }[];
        max_concurrent_trainings: number;
        preprocess_workers: number;
      };
      assert.deepEqual(info.ports, { grpc: server.grpcPort, metrics: server.metricsPort, health: Number(healthAddress.split(':')[1]) });
      assert.ok(info.onnxruntime_execution_providers.some((p) => p.name === 'cpu' && p.bundled));
      // One training per CUDA device; without one (this machine) NNUNET_CPU_TRAININGS, default 1.
      assert.equal(info.max_concurrent_trainings, info.cuda_device_count > 0 ? info.cuda_device_count : 1);
      assert.equal(info.preprocess_workers, Number(process.env.NNUNET_PREPROCESS_WORKERS || Math.min(2, availableParallelism())));
    } finally {
      client.close();
    }
  });

  it('turns NOT_SERVING on SIGTERM, then closes with the process (exit 0)', async () => {
    const client = healthClient(healthAddress);
    const statuses: string[] = [];
    const watch = client.Watch({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    const ended = new Promise<void>((resolve) => {
      watch.on('data', (m: { status: string }) => {
        statuses.push(m.status);
        if (statuses.length === 1) server.child.kill('SIGTERM');
      });
      watch.on('error', () => resolve());
      watch.on('end', () => resolve());
    });
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    await ended;
    client.close();
    assert.deepEqual(statuses, ['SERVING', 'NOT_SERVING']);
    assert.equal(await exited, 0);
    await assert.rejects(healthStatus(healthAddress), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
  });
});
