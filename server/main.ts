// The server process: configuration → gRPC server (nnunet.v1 services, grpc.health.v1, server
// reflection) and the Prometheus metrics HTTP server; drains gracefully on SIGTERM/SIGINT (health
// NOT_SERVING first, so load balancers stop routing, then in-flight calls finish within the grace
// period). Auth, metrics and request ids are interceptors, so every method gets them.
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { pino, type Logger } from 'pino';
import { loadConfig, packageVersion, type ServerConfig } from './config.js';
import { createCaseWork } from './inference/case-work.js';
import { loadModelFolder } from './inference/model-folder.js';
import { openJobQueue } from './jobs/index.js';
import { createMetrics, startMetricsServer, type ServerMetrics } from './metrics.js';
import { installBundledModels } from './models/bundled.js';
import { listModels } from './models/repository.js';
import { Admission } from './rpc/admission.js';
import { authInterceptor, loadTokens } from './rpc/auth.js';
import type { RpcContext } from './rpc/context.js';
import { datasetService, type DatasetServiceHooks } from './rpc/datasets.js';
import { unimplementedService } from './rpc/errors.js';
import { ModelCache } from './rpc/model-cache.js';
import { modelService } from './rpc/models.js';
import { observingInterceptor } from './rpc/observe.js';
import { inferenceService } from './rpc/predict.js';
import { LOADER_OPTIONS, packageDefinition, serviceDefinition } from './rpc/protos.js';
import { reflectionService } from './rpc/reflection.js';
import { jobHooks } from './rpc/training.js';
import { serverInfoService, type ServerPorts } from './rpc/server-info.js';

export interface RunningServer {
  grpcPort: number;
  metricsPort: number | undefined;
  /** The plaintext grpc.health.v1 port (NNUNET_HEALTH_PORT), when enabled. */
  healthPort: number | undefined;
  health: HealthImplementation;
  metrics: ServerMetrics;
  /** Stops accepting calls, waits for in-flight ones up to the grace period, then forces. */
  stop(): Promise<void>;
}

/** Services the jobs module provides; until it is wired in they answer UNIMPLEMENTED. */
export interface ServiceHooks extends DatasetServiceHooks {
  trainingService?: grpc.UntypedServiceImplementation;
}

const SERVICES = ['nnunet.v1.ServerService', 'nnunet.v1.ModelService', 'nnunet.v1.DatasetService', 'nnunet.v1.InferenceService', 'nnunet.v1.TrainingService'];

function credentials(config: ServerConfig): grpc.ServerCredentials {
  if (!config.tlsCertFile || !config.tlsKeyFile) return grpc.ServerCredentials.createInsecure();
  const pair = { cert_chain: readFileSync(config.tlsCertFile), private_key: readFileSync(config.tlsKeyFile) };
  const ca = config.tlsCaFile ? readFileSync(config.tlsCaFile) : null;
  // With a CA, clients must present a certificate it signed (mTLS).
  return grpc.ServerCredentials.createSsl(ca, [pair], Boolean(ca));
}

function channelOptions(config: ServerConfig): grpc.ServerOptions {
  const options: grpc.ServerOptions = {
    'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
    'grpc.max_send_message_length': config.maxReceiveMessageBytes,
    'grpc.keepalive_time_ms': config.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs,
  };
  if (config.maxConnectionAgeMs > 0) {
    options['grpc.max_connection_age_ms'] = config.maxConnectionAgeMs;
    options['grpc.max_connection_age_grace_ms'] = config.maxConnectionAgeGraceMs;
  }
  return options;
}

export async function startServer(config: ServerConfig, logger: Logger = pino({ level: config.logLevel }), given: ServiceHooks = {}): Promise<RunningServer> {
  // The job store and queue (server/jobs) back TrainingService and PlanAndPreprocess unless the caller supplies its own.
  const queue = given.trainingService ? undefined : await openJobQueue(config.roots, logger);
  const hooks: ServiceHooks = { ...(queue ? jobHooks(queue) : {}), ...given };
  const tokens = loadTokens(config);
  if (tokens.size === 0) {
    logger.warn({ event: 'auth_disabled' }, 'AUTH IS OFF: no NNUNET_TOKENS_FILE, NNUNET_ADMIN_TOKEN or NNUNET_READ_TOKEN; anyone who reaches the port can upload, delete and train');
  }
  const metrics = createMetrics(packageVersion());
  const ctx: RpcContext = { config, metrics, logger };
  // With workers, the onnxruntime sessions run in threads of their own too (inference/onnx-thread.ts).
  const cache = new ModelCache(config.maxLoadedModels, (n) => metrics.loadedModels.set(n), (folder, folds) => loadModelFolder(folder, { folds, thread: config.preprocessWorkers > 0, executionProviders: config.onnxProviders, ...(config.onnxThreads > 0 ? { intraOpThreads: config.onnxThreads } : {}) }));
  const admission = new Admission(config.maxConcurrentPredictions, config.maxQueuedPredictions, (running, queued) => {
    metrics.predictionsInFlight.set(running);
    metrics.predictionsQueued.set(queued);
  });
  const caseWork = createCaseWork(config.preprocessWorkers);
  const ports: ServerPorts = {};

  // Bundled models are in the repository before the port opens, so the first call finds them.
  if (config.bundledModels) {
    try {
      const bundled = installBundledModels(config.bundledModels, config.roots.results);
      for (const model of bundled.installed) logger.info({ event: 'bundled_model_installed', model }, `installed the bundled model ${model}`);
      for (const s of bundled.skipped) if (s.reason !== 'already in the repository') logger.warn({ event: 'bundled_model_skipped', model: s.model, reason: s.reason }, `bundled model ${s.model} not installed: ${s.reason}`);
    } catch (err) {
      logger.warn({ event: 'bundled_model_failed', err }, `could not copy the bundled models from ${config.bundledModels}: ${(err as Error).message}`);
    }
  }
  const server = new grpc.Server({ ...channelOptions(config), interceptors: [observingInterceptor(metrics, logger), authInterceptor(tokens)] });
  server.addService(serviceDefinition('ServerService'), serverInfoService(config, tokens.size > 0, ports));
  server.addService(serviceDefinition('ModelService'), modelService(ctx, cache));
  server.addService(serviceDefinition('DatasetService'), datasetService(ctx, hooks));
  server.addService(serviceDefinition('InferenceService'), inferenceService(ctx, cache, admission, caseWork));
  server.addService(
    serviceDefinition('TrainingService'),
    hooks.trainingService ?? unimplementedService(serviceDefinition('TrainingService'), 'training and jobs are not wired into this server yet (server/jobs)'),
  );
  // "liveness" stays SERVING while the process runs, draining included: a liveness probe on it never
  // kills a replica that is finishing its calls; readiness probes the overall "" status.
  const health = new HealthImplementation({ ...Object.fromEntries(['', ...SERVICES].map((s) => [s, 'SERVING'])), liveness: 'SERVING' });
  health.addToServer(server);
  // Kubernetes gRPC probes cannot do TLS (SERVING.md §4.9): an optional plaintext server with
  // grpc.health.v1 only, sharing the status map, so draining shows NOT_SERVING there too.
  const healthServer = config.healthPort >= 0 ? new grpc.Server() : undefined;
  if (healthServer) health.addToServer(healthServer);
  reflectionService([packageDefinition(), protoLoader.loadSync(healthProtoPath, LOADER_OPTIONS)]).addToServer(server);

  const bind = (s: grpc.Server, port: number, creds: grpc.ServerCredentials) =>
    new Promise<number>((resolve, reject) => s.bindAsync(`${config.host}:${port}`, creds, (err, bound) => (err ? reject(err) : resolve(bound))));
  const grpcPort = await bind(server, config.port, credentials(config));
  const healthPort = healthServer ? await bind(healthServer, config.healthPort, grpc.ServerCredentials.createInsecure()) : undefined;
  let metricsServer: { server: HttpServer; port: number } | undefined;
  if (config.metricsPort >= 0) metricsServer = await startMetricsServer(metrics.registry, config.host, config.metricsPort);

  logger.info(
    {
      event: 'listening',
      host: config.host,
      grpcPort,
      metricsPort: metricsServer?.port,
      healthPort,
      preprocessWorkers: caseWork.threads,
      version: packageVersion(),
      roots: config.roots,
      tls: Boolean(config.tlsCertFile),
      mtls: Boolean(config.tlsCaFile),
      auth: tokens.size > 0,
    },
    `nnunet-server listening on ${config.host}:${grpcPort}`,
  );
  Object.assign(ports, { grpc: grpcPort, metrics: metricsServer?.port, health: healthPort });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const s of ['', ...SERVICES]) health.setStatus(s, 'NOT_SERVING');
      logger.info({ event: 'draining', graceSeconds: config.shutdownGraceSeconds }, 'draining: no new calls accepted');
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          logger.warn({ event: 'forced_shutdown' }, 'grace period over: cancelling remaining calls');
          server.forceShutdown();
          resolve();
        }, config.shutdownGraceSeconds * 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await cache.close();
      await caseWork.close();
      // Running jobs are interrupted (trainings write checkpoint_latest) and resume at the next start.
      await queue?.close();
      await queue?.store.close();
      await new Promise<void>((resolve) => (metricsServer ? metricsServer.server.close(() => resolve()) : resolve()));
      // Last, so probes see NOT_SERVING for the whole drain; open Watch streams are cut.
      healthServer?.forceShutdown();
      logger.info({ event: 'stopped' }, 'stopped');
    })());
  const models = listModels(config.roots.results);
  logger.info(
    { event: 'model_repository', folder: config.roots.results, models: models.length },
    models.length === 0 ? `model repository ${config.roots.results} is empty` : `model repository: ${models.length} model(s)`,
  );
  return { grpcPort, metricsPort: metricsServer?.port, healthPort, health, metrics, stop };
}

/** Entry point of `npm start` and `nnunet serve`. */
export async function main(overrides: Partial<ServerConfig> = {}, hooks: ServiceHooks = {}): Promise<void> {
  const config = loadConfig(process.env, overrides);
  const logger = pino({ level: config.logLevel });
  const running = await startServer(config, logger, hooks);
  const onSignal = (signal: string) => {
    logger.info({ event: 'signal', signal }, `received ${signal}`);
    running.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}

if (process.argv[1] && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])) {
  main().catch((err: Error) => {
    console.error(`nnunet-server failed to start: ${err.message}`);
    process.exit(1);
  });
}
