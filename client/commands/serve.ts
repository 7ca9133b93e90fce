// `nnunet serve`: runs the gRPC server in the foreground (the same as `npm start`).
import { main } from '../../server/main.js';
import { EXIT, type Command } from './types.js';

export const serveCommand: Command = {
  spec: {
    name: 'serve',
    summary: 'run the gRPC server (and /metrics) until SIGTERM or Ctrl-C',
    description: [
      'Runs the gRPC server (nnunet.v1 services, grpc.health.v1, server reflection) and /metrics.',
      'Environment: NNUNET_HOST, NNUNET_PORT, NNUNET_METRICS_PORT, NNUNET_HOME, nnUNet_raw, nnUNet_preprocessed, nnUNet_results;',
      'auth: NNUNET_TOKENS_FILE (JSON {token: "admin"|"read"}), NNUNET_ADMIN_TOKEN, NNUNET_READ_TOKEN (none set: auth off);',
      'TLS: NNUNET_TLS_CERT, NNUNET_TLS_KEY, NNUNET_TLS_CA (mTLS); limits: NNUNET_MAX_UPLOAD_BYTES, NNUNET_MAX_VOXELS,',
      'NNUNET_MAX_CONCURRENT_PREDICTIONS, NNUNET_MAX_QUEUED_PREDICTIONS, NNUNET_MAX_LOADED_MODELS, NNUNET_MAX_RECEIVE_MESSAGE_BYTES,',
      'NNUNET_CHUNK_SIZE_BYTES; connections: NNUNET_KEEPALIVE_TIME_MS, NNUNET_KEEPALIVE_TIMEOUT_MS, NNUNET_MAX_CONNECTION_AGE_MS,',
      'NNUNET_MAX_CONNECTION_AGE_GRACE_MS; NNUNET_SHUTDOWN_GRACE_SECONDS, NNUNET_TMP_DIR, NNUNET_LOG_LEVEL.',
    ].join(' '),
    options: [
      { flags: ['--host'], dest: 'host', help: 'address to listen on' },
      { flags: ['--port'], dest: 'port', type: 'int', help: 'gRPC port (0 = any free port)' },
      { flags: ['--metrics-port'], dest: 'metricsPort', type: 'int', help: 'Prometheus /metrics port (0 = any, -1 = off)' },
      { flags: ['--health-port'], dest: 'healthPort', type: 'int', help: 'plaintext grpc.health.v1-only port for Kubernetes probes beside TLS (0 = any, -1 = off)' },
    ],
  },
  async run(args) {
    const overrides = Object.fromEntries(Object.entries({ host: args.host, port: args.port, metricsPort: args.metricsPort, healthPort: args.healthPort }).filter(([, v]) => v !== undefined));
    await main(overrides);
    // The server keeps the process alive; signals end it.
    return await new Promise<number>(() => EXIT.ok);
  },
};
