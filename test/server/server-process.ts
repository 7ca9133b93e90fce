// Starts the real server process (server/main.ts under tsx) on ephemeral loopback ports with a
// temporary NNUNET_HOME, and waits for its "listening" log line; the e2e tests talk to it over
// real gRPC, as a deployment's clients do.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { REPO_ROOT, SHARED } from '../helpers.js';

/** nnU-Net v2's export of a small Hippocampus model (Dataset104_HippoDev, fold 0). */
export const MODEL_ZIP = join(SHARED, 'fixtures', 'nnunetv2_model', 'hippo_small_nnunetv2.zip');
export const MODEL_FOLDER = 'nnUNetTrainer_RefSmall__nnUNetPlansSmall__3d_fullres';
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const READ_TOKEN = 'read-token-0123456789abcdef';

/** Checks a grpc.health.v1 status with a client built from the health proto itself. */
export async function healthStatus(address: string, service = ''): Promise<string> {
  const def = protoLoader.loadSync(healthProtoPath, { enums: String });
  const Health = (((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor;
  const client = new Health(address, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => client.Check({ service }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))));
  } finally {
    client.close();
  }
}

export interface ServerProcess {
  child: ChildProcess;
  grpcPort: number;
  metricsPort: number;
  address: string;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'server', 'main.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, NNUNET_HOST: '127.0.0.1', NNUNET_PORT: '0', NNUNET_METRICS_PORT: '0', NNUNET_BUNDLED_MODELS: process.env.NNUNET_BUNDLED_MODELS ?? 'none', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not log "listening" within 60 s')), 60_000);
    void exited.then((code) => reject(new Error(`server exited early with code ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { event?: string; grpcPort?: number; metricsPort?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.event === 'listening') {
        clearTimeout(timer);
        resolve({ child, grpcPort: entry.grpcPort!, metricsPort: entry.metricsPort!, address: `127.0.0.1:${entry.grpcPort}`, logs, stop });
      }
    });
  });
}
