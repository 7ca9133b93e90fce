// One server interceptor that observes every call, health and reflection included: the
// go-grpc-prometheus metric family (started, handled by code, handling seconds, messages),
// a request id (the client's `x-request-id`, else a fresh one) put into the call's metadata for
// handlers and echoed in the response headers, and one structured log line per finished call.
// grpc-js 1.14 server interceptors see the final status, so counting needs no per-handler code.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ServerMetrics } from '../metrics.js';

const CODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));

function grpcType(method: grpc.ServerMethodDefinition<unknown, unknown>): string {
  if (method.requestStream) return method.responseStream ? 'bidi_stream' : 'client_stream';
  return method.responseStream ? 'server_stream' : 'unary';
}

export function observingInterceptor(metrics: ServerMetrics, logger: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    const [service = 'unknown', name = 'unknown'] = method.path.replace(/^\//, '').split('/');
    const labels = { grpc_type: grpcType(method), grpc_service: service, grpc_method: name };
    const started = performance.now();
    let requestId = '';
    let finished = false;
    metrics.started.inc(labels);
    const finish = (code: grpc.status, details?: string) => {
      if (finished) return;
      finished = true;
      const elapsed = (performance.now() - started) / 1000;
      const codeName = CODE_NAMES[code] ?? String(code);
      metrics.handled.inc({ ...labels, grpc_code: codeName });
      metrics.handlingSeconds.observe(labels, elapsed);
      // Health probes arrive every few seconds: keep them out of the info log.
      const level = service.startsWith('grpc.') ? 'debug' : code === grpc.status.OK ? 'info' : code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN ? 'error' : 'warn';
      logger[level]({ event: 'rpc', requestId, method: method.path, code: codeName, seconds: Number(elapsed.toFixed(4)), details: code === grpc.status.OK ? undefined : details, peer: call.getPeer() }, `${method.path} ${codeName}`);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const given = String(metadata.get('x-request-id')[0] ?? '');
            // Accept a client's id only when it is short and plain, so logs cannot be forged.
            requestId = /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
            metadata.set('x-request-id', requestId);
            mdNext(metadata);
          },
          onReceiveMessage: (message, msgNext) => {
            metrics.msgReceived.inc(labels);
            msgNext(message);
          },
          onCancel: () => finish(grpc.status.CANCELLED, 'cancelled by the client'),
        });
      },
      sendMetadata: (metadata, mdNext) => {
        if (requestId) metadata.set('x-request-id', requestId);
        mdNext(metadata);
      },
      sendMessage: (message, msgNext) => {
        metrics.msgSent.inc(labels);
        msgNext(message);
      },
      sendStatus: (status, statusNext) => {
        finish(status.code, status.details);
        statusNext(status);
      },
    });
  };
}
