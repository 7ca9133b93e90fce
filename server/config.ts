// Server configuration: defaults, then environment variables, then explicit overrides (CLI flags).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataRoots, type DataRoots } from './dataset/paths.js';

export interface ServerConfig {
  host: string;
  /** gRPC port; 0 picks a free one (the chosen port is logged and returned). */
  port: number;
  /** Prometheus /metrics HTTP port; 0 picks a free one, -1 disables it. */
  metricsPort: number;
  roots: DataRoots;
  maxVoxels: number;
  maxReceiveMessageBytes: number;
  /** Seconds to finish in-flight calls after SIGTERM before forcing shutdown. */
  shutdownGraceSeconds: number;
  logLevel: string;
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw)) throw new Error(`environment variable ${name} must be an integer, got "${raw}"`);
  return Number(raw);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const config: ServerConfig = {
    host: env.NNUNET_HOST ?? '0.0.0.0',
    port: intFromEnv(env, 'NNUNET_PORT', 50051),
    metricsPort: intFromEnv(env, 'NNUNET_METRICS_PORT', 9464),
    roots: dataRoots(env),
    maxVoxels: intFromEnv(env, 'NNUNET_MAX_VOXELS', 1024 ** 3),
    maxReceiveMessageBytes: intFromEnv(env, 'NNUNET_MAX_RECEIVE_MESSAGE_BYTES', 8 * 1024 * 1024),
    shutdownGraceSeconds: intFromEnv(env, 'NNUNET_SHUTDOWN_GRACE_SECONDS', 30),
    logLevel: env.NNUNET_LOG_LEVEL ?? 'info',
    ...overrides,
  };
  for (const [key, value] of Object.entries({ port: config.port, metricsPort: config.metricsPort })) {
    if (value < -1 || value > 65535) throw new Error(`${key} must be in 0..65535 (or -1 to disable metrics), got ${value}`);
  }
  return config;
}

/** The project root (the folder with package.json and protos/), found from this module's location. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'nnunet-server') return dir;
    } catch {
      // not here; go up
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the nnunet-server package root (package.json) above ' + fileURLToPath(import.meta.url));
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
