// Starts the real server process (server/main.ts under tsx) on ephemeral loopback ports with a
// temporary NNUNET_HOME, and waits for its "listening" log line; the e2e tests talk to it over
// real gRPC, as a deployment's clients do.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../helpers.js';

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
    env: { ...process.env, NNUNET_HOST: '127.0.0.1', NNUNET_PORT: '0', NNUNET_METRICS_PORT: '0', ...env },
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
