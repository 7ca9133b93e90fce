// Server configuration: defaults, then environment variables, then explicit overrides (CLI flags).
// Every limit the server enforces is here, so an operator sees them in one place (and clients see
// them through GetServerInfo).
import { readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataRoots, type DataRoots } from './dataset/paths.js';
import { dicomWebConfigFromEnv, type DicomWebConfig } from './dicomweb/client.js';

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
  /** Largest file one upload (UploadCase, InstallModel, a Predict input channel) may declare. */
  maxUploadBytes: number;
  /** Chunk size of streamed outputs, and the size the SDK sends. */
  chunkSizeBytes: number;
  /** Predict calls running at once; past it they wait in a bounded queue. */
  maxConcurrentPredictions: number;
  /** Predict calls that may wait; past it RESOURCE_EXHAUSTED. */
  maxQueuedPredictions: number;
  /** Models kept loaded (onnxruntime sessions), least recently used evicted first. */
  maxLoadedModels: number;
  /** Where Predict spools its inputs and InstallModel its zips; every call removes its own files. */
  tmpDir: string;
  /** Bearer tokens: `NNUNET_TOKENS_FILE` (JSON {token: role}) or `NNUNET_ADMIN_TOKEN` / `NNUNET_READ_TOKEN`. */
  tokensFile?: string;
  adminToken?: string;
  readToken?: string;
  /** TLS: server certificate and key (PEM); with a CA, clients must present a certificate it signed (mTLS). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  /** Server keepalive pings (detects dead clients, so their work is cancelled). */
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /** Connections are closed (GOAWAY) after this age so L4-balanced clients re-spread; 0 = never. */
  maxConnectionAgeMs: number;
  /** Time calls still running at max connection age get to finish. */
  maxConnectionAgeGraceMs: number;
  /**
   * Models shipped with the package, copied into the repository at start when missing
   * (server/models/bundled.ts). `NNUNET_BUNDLED_MODELS`: a folder, or `none`; default models/demo.
   */
  bundledModels?: string;
  /** Pretrained catalog file (`NNUNET_CATALOG`); unset for the package's models/catalog.json. */
  catalogFile?: string;
  /**
   * Worker threads for Predict's preprocessing and export (resampling, normalisation, argmax,
   * encoding), so they never block the event loop; with any, each loaded fold's onnxruntime session
   * also runs in a thread of its own. `NNUNET_PREPROCESS_WORKERS`, default min(2, cores); 0 runs
   * all of it on the main thread.
   */
  preprocessWorkers: number;
  /** onnxruntime execution providers for Predict, in priority order (`NNUNET_ONNX_PROVIDERS`, e.g. "cuda,cpu"); default cpu. */
  onnxProviders: string[];
  /** Threads of one onnxruntime run (`NNUNET_ONNX_THREADS`); 0 = onnxruntime's choice (all cores). Set it to the pod's CPU limit. */
  onnxThreads: number;
  /**
   * A second, plaintext port serving only grpc.health.v1, for Kubernetes gRPC probes (which cannot
   * do TLS) when the main port needs TLS or mTLS. `NNUNET_HEALTH_PORT`: -1 = off (default), 0 = pick
   * a free one. It binds the same host as the main port.
   */
  healthPort: number;
  /**
   * The PACS that Predict may pull series from (PredictHeader.dicomweb_series) and store SEGs
   * into: `NNUNET_DICOMWEB_URL` with `NNUNET_DICOMWEB_USER`/`_PASSWORD` or `_TOKEN`. Unset: none.
   */
  dicomweb?: DicomWebConfig;
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
    maxUploadBytes: intFromEnv(env, 'NNUNET_MAX_UPLOAD_BYTES', 1024 ** 3),
    chunkSizeBytes: intFromEnv(env, 'NNUNET_CHUNK_SIZE_BYTES', 1024 * 1024),
    maxConcurrentPredictions: intFromEnv(env, 'NNUNET_MAX_CONCURRENT_PREDICTIONS', 2),
    maxQueuedPredictions: intFromEnv(env, 'NNUNET_MAX_QUEUED_PREDICTIONS', 8),
    maxLoadedModels: intFromEnv(env, 'NNUNET_MAX_LOADED_MODELS', 4),
    tmpDir: env.NNUNET_TMP_DIR || tmpdir(),
    tokensFile: env.NNUNET_TOKENS_FILE || undefined,
    adminToken: env.NNUNET_ADMIN_TOKEN || undefined,
    readToken: env.NNUNET_READ_TOKEN || undefined,
    tlsCertFile: env.NNUNET_TLS_CERT || undefined,
    tlsKeyFile: env.NNUNET_TLS_KEY || undefined,
    tlsCaFile: env.NNUNET_TLS_CA || undefined,
    keepaliveTimeMs: intFromEnv(env, 'NNUNET_KEEPALIVE_TIME_MS', 60_000),
    keepaliveTimeoutMs: intFromEnv(env, 'NNUNET_KEEPALIVE_TIMEOUT_MS', 20_000),
    maxConnectionAgeMs: intFromEnv(env, 'NNUNET_MAX_CONNECTION_AGE_MS', 0),
    maxConnectionAgeGraceMs: intFromEnv(env, 'NNUNET_MAX_CONNECTION_AGE_GRACE_MS', 300_000),
    catalogFile: env.NNUNET_CATALOG || undefined,
    bundledModels: bundledModelsFromEnv(env.NNUNET_BUNDLED_MODELS),
    preprocessWorkers: intFromEnv(env, 'NNUNET_PREPROCESS_WORKERS', Math.min(2, availableParallelism())),
    onnxProviders: (env.NNUNET_ONNX_PROVIDERS || 'cpu').split(',').map((s) => s.trim().toLowerCase()),
    onnxThreads: intFromEnv(env, 'NNUNET_ONNX_THREADS', 0),
    healthPort: intFromEnv(env, 'NNUNET_HEALTH_PORT', -1),
    dicomweb: dicomWebConfigFromEnv(env),
    ...overrides,
  };
  for (const [key, value] of Object.entries({ port: config.port, metricsPort: config.metricsPort, healthPort: config.healthPort })) {
    if (value < -1 || value > 65535) throw new Error(`${key} must be in 0..65535 (or -1 to disable it), got ${value}`);
  }
  // Chunks must fit in one message with room for the envelope.
  if (config.chunkSizeBytes < 1024 || config.chunkSizeBytes > config.maxReceiveMessageBytes - 64 * 1024) {
    throw new Error(`NNUNET_CHUNK_SIZE_BYTES must be in 1024..(NNUNET_MAX_RECEIVE_MESSAGE_BYTES - 64 KiB), got ${config.chunkSizeBytes}`);
  }
  for (const [key, value] of Object.entries({ maxConcurrentPredictions: config.maxConcurrentPredictions, maxLoadedModels: config.maxLoadedModels, maxUploadBytes: config.maxUploadBytes })) {
    if (value < 1) throw new Error(`${key} must be at least 1, got ${value}`);
  }
  if (config.healthPort > 0 && config.healthPort === config.port) throw new Error(`NNUNET_HEALTH_PORT must differ from NNUNET_PORT (both ${config.port}): the health port is a second listener`);
  if (config.onnxProviders.length === 0 || config.onnxProviders.some((p) => !/^[a-z][a-z0-9]*$/.test(p))) {
    throw new Error(`NNUNET_ONNX_PROVIDERS must be a comma-separated list of onnxruntime execution provider names (e.g. "cuda,cpu"), got "${config.onnxProviders.join(',')}"`);
  }
  if (config.onnxThreads < 0) throw new Error(`NNUNET_ONNX_THREADS must be >= 0 (0 = all cores), got ${config.onnxThreads}`);
  if (config.preprocessWorkers < 0) throw new Error(`NNUNET_PREPROCESS_WORKERS must be >= 0 (0 = in-line on the main thread), got ${config.preprocessWorkers}`);
  if (config.maxQueuedPredictions < 0) throw new Error(`maxQueuedPredictions must be >= 0, got ${config.maxQueuedPredictions}`);
  if (Boolean(config.tlsCertFile) !== Boolean(config.tlsKeyFile)) throw new Error('TLS needs both NNUNET_TLS_CERT and NNUNET_TLS_KEY');
  if (config.tlsCaFile && !config.tlsCertFile) throw new Error('NNUNET_TLS_CA (mTLS) needs NNUNET_TLS_CERT and NNUNET_TLS_KEY');
  return config;
}

function bundledModelsFromEnv(value: string | undefined): string | undefined {
  if (value === undefined) return join(projectRoot(), 'models', 'demo');
  return value === '' || value.toLowerCase() === 'none' ? undefined : value;
}

/**
 * Trainings that run at once (the job queue's `training` resource): one per CUDA device libtorch
 * sees (server/devices.ts), else `NNUNET_CPU_TRAININGS` (default 1) on a host without one.
 * `NNUNET_MAX_TRAINING_JOBS`, when set, overrides both.
 */
export function trainingConcurrency(env: NodeJS.ProcessEnv, cudaDeviceCount: number): number {
  for (const name of ['NNUNET_MAX_TRAINING_JOBS', ...(cudaDeviceCount > 0 ? [] : ['NNUNET_CPU_TRAININGS'])]) {
    const n = intFromEnv(env, name, 0);
    if (env[name] !== undefined && env[name] !== '' && n < 1) throw new Error(`${name} must be at least 1, got ${n}`);
    if (n >= 1) return n;
  }
  return cudaDeviceCount > 0 ? cudaDeviceCount : 1;
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
