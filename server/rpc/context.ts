// What every service implementation gets: configuration, metrics and the logger, passed as data
// (no module-level globals), plus the per-call helpers that read the request id.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';

/** What every kind of server call has (grpc-js does not export its ServerSurfaceCall type). */
export interface SurfaceCall {
  readonly metadata: grpc.Metadata;
  readonly cancelled: boolean;
  once(event: 'cancelled', listener: () => void): unknown;
  removeListener(event: 'cancelled', listener: () => void): unknown;
}

export interface RpcContext {
  config: ServerConfig;
  metrics: ServerMetrics;
  logger: Logger;
}

/** The request id the observing interceptor put into the call's metadata (or the client's own). */
export function requestId(call: SurfaceCall): string {
  return String(call.metadata.get('x-request-id')[0] ?? '');
}

/** A child logger that tags every line with the call's request id. */
export function callLogger(ctx: RpcContext, call: SurfaceCall, method: string): Logger {
  return ctx.logger.child({ requestId: requestId(call), method });
}
