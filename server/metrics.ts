// Prometheus metrics on their own HTTP port (`/metrics`, text exposition format), kept apart from
// the gRPC port so scrapers and load balancers never share a connection with clients. Names follow
// go-grpc-prometheus for the gRPC family and Prometheus base units (seconds, bytes) for ours;
// labels are bounded sets (method, code, stage), never case, dataset or job ids.
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds from 5 ms (health checks) to 4 h (a long upload or a queued prediction on a big CT). */
const HANDLING_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400];
/** Seconds of one inference stage: 3D cases take seconds to many minutes. */
const STAGE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

const GRPC_LABELS = ['grpc_type', 'grpc_service', 'grpc_method'] as const;

export interface ServerMetrics {
  registry: Registry;
  started: Counter<(typeof GRPC_LABELS)[number]>;
  handled: Counter<(typeof GRPC_LABELS)[number] | 'grpc_code'>;
  handlingSeconds: Histogram<(typeof GRPC_LABELS)[number]>;
  msgReceived: Counter<(typeof GRPC_LABELS)[number]>;
  msgSent: Counter<(typeof GRPC_LABELS)[number]>;
  /** Payload bytes (file chunks) received and sent, per method. */
  receivedBytes: Counter<'grpc_method'>;
  sentBytes: Counter<'grpc_method'>;
  inferenceSeconds: Histogram<'stage'>;
  inferenceVoxels: Counter<string>;
  predictionsInFlight: Gauge<string>;
  predictionsQueued: Gauge<string>;
  predictionsRejected: Counter<string>;
  loadedModels: Gauge<string>;
}

export function createMetrics(version = 'unknown'): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const grpcLabels = [...GRPC_LABELS];
  const metrics: ServerMetrics = {
    registry,
    started: new Counter({ name: 'grpc_server_started_total', help: 'RPCs started on the server.', labelNames: grpcLabels, registers }),
    handled: new Counter({ name: 'grpc_server_handled_total', help: 'RPCs completed on the server, whatever their status.', labelNames: [...grpcLabels, 'grpc_code'], registers }),
    handlingSeconds: new Histogram({ name: 'grpc_server_handling_seconds', help: 'Time from the start of an RPC to its status.', labelNames: grpcLabels, buckets: HANDLING_BUCKETS, registers }),
    msgReceived: new Counter({ name: 'grpc_server_msg_received_total', help: 'Stream messages received.', labelNames: grpcLabels, registers }),
    msgSent: new Counter({ name: 'grpc_server_msg_sent_total', help: 'Stream messages sent.', labelNames: grpcLabels, registers }),
    receivedBytes: new Counter({ name: 'nnunet_received_bytes_total', help: 'File bytes received in upload and volume chunks.', labelNames: ['grpc_method'], registers }),
    sentBytes: new Counter({ name: 'nnunet_sent_bytes_total', help: 'File bytes sent in output chunks.', labelNames: ['grpc_method'], registers }),
    inferenceSeconds: new Histogram({ name: 'nnunet_inference_seconds', help: 'Time of one inference stage of one case.', labelNames: ['stage'], buckets: STAGE_BUCKETS, registers }),
    inferenceVoxels: new Counter({ name: 'nnunet_inference_voxels_total', help: 'Input voxels (one channel) predicted.', registers }),
    predictionsInFlight: new Gauge({ name: 'nnunet_predictions_in_flight', help: 'Predict calls running the model now.', registers }),
    predictionsQueued: new Gauge({ name: 'nnunet_predictions_queued', help: 'Predict calls admitted and waiting (receiving input or for a slot).', registers }),
    predictionsRejected: new Counter({ name: 'nnunet_predictions_rejected_total', help: 'Predict calls refused because the queue was full.', registers }),
    loadedModels: new Gauge({ name: 'nnunet_loaded_models', help: 'Models held loaded in the model cache.', registers }),
  };
  for (const stage of ['preprocess', 'predict', 'export']) metrics.inferenceSeconds.zero({ stage });
  new Gauge({ name: 'nnunet_build_info', help: 'Version of this server; always 1.', labelNames: ['version'], registers }).set({ version }, 1);
  return metrics;
}

/** Serves `/metrics` from `registry`; resolves with the bound port. */
export function startMetricsServer(registry: Registry, host: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`metrics collection failed: ${err.message}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found: metrics are served at /metrics\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : port });
    });
  });
}
