// The server process: configuration → gRPC server (nnunet.v1 services, grpc.health.v1) and the
// Prometheus metrics HTTP server; drains gracefully on SIGTERM/SIGINT (health NOT_SERVING first,
// so load balancers stop routing, then in-flight calls finish within the grace period).
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Server as HttpServer } from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { loadConfig, packageVersion, type ServerConfig } from './config.js';
import { createRegistry, startMetricsServer } from './metrics.js';
import { listModels } from './models/repository.js';
import { modelService } from './rpc/models.js';
import { serviceDefinition } from './rpc/protos.js';
import { serverInfoService } from './rpc/server-info.js';

export interface RunningServer {
  grpcPort: number;
  metricsPort: number | undefined;
  health: HealthImplementation;
  /** Stops accepting calls, waits for in-flight ones up to the grace period, then forces. */
  stop(): Promise<void>;
}

const SERVICES = ['nnunet.v1.ServerService', 'nnunet.v1.ModelService'];

export async function startServer(config: ServerConfig, logger: Logger = pino({ level: config.logLevel })): Promise<RunningServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
    'grpc.max_send_message_length': config.maxReceiveMessageBytes,
  });
  server.addService(serviceDefinition('ServerService'), serverInfoService(config));
  server.addService(serviceDefinition('ModelService'), modelService(config));
  const health = new HealthImplementation(Object.fromEntries(['', ...SERVICES].map((s) => [s, 'SERVING'])));
  health.addToServer(server);

  const grpcPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${config.host}:${config.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
  let metrics: { server: HttpServer; port: number } | undefined;
  if (config.metricsPort >= 0) metrics = await startMetricsServer(createRegistry(), config.host, config.metricsPort);

  logger.info(
    { event: 'listening', host: config.host, grpcPort, metricsPort: metrics?.port, version: packageVersion(), roots: config.roots },
    `nnunet-server listening on ${config.host}:${grpcPort}`,
  );

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
      await new Promise<void>((resolve) => (metrics ? metrics.server.close(() => resolve()) : resolve()));
      logger.info({ event: 'stopped' }, 'stopped');
    })());
  const models = listModels(config.roots.results);
  logger.info(
    { event: 'model_repository', folder: config.roots.results, models: models.length },
    models.length === 0 ? `model repository ${config.roots.results} is empty` : `model repository: ${models.length} model(s)`,
  );
  return { grpcPort, metricsPort: metrics?.port, health, stop };
}

/** Entry point of `npm start` and `nnunet serve`. */
export async function main(overrides: Partial<ServerConfig> = {}): Promise<void> {
  const config = loadConfig(process.env, overrides);
  const logger = pino({ level: config.logLevel });
  const running = await startServer(config, logger);
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
