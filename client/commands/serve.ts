// `nnunet serve`: runs the gRPC server in the foreground (the same as `npm start`).
import { main } from '../../server/main.js';
import { EXIT, type Command } from './types.js';

export const serveCommand: Command = {
  spec: {
    name: 'serve',
    summary: 'run the gRPC server (and /metrics) until SIGTERM or Ctrl-C',
    description: 'Runs the gRPC server. Environment: NNUNET_HOST, NNUNET_PORT, NNUNET_METRICS_PORT, NNUNET_HOME, nnUNet_raw, nnUNet_preprocessed, nnUNet_results.',
    options: [
      { flags: ['--host'], dest: 'host', help: 'address to listen on' },
      { flags: ['--port'], dest: 'port', type: 'int', help: 'gRPC port (0 = any free port)' },
      { flags: ['--metrics-port'], dest: 'metricsPort', type: 'int', help: 'Prometheus /metrics port (0 = any, -1 = off)' },
    ],
  },
  async run(args) {
    const overrides = Object.fromEntries(Object.entries({ host: args.host, port: args.port, metricsPort: args.metricsPort }).filter(([, v]) => v !== undefined));
    await main(overrides);
    // The server keeps the process alive; signals end it.
    return await new Promise<number>(() => EXIT.ok);
  },
};
