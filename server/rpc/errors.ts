// Maps stage errors to gRPC status codes with messages a person can act on (DESIGN.md "Errors",
// SERVING.md §4.7). Handlers throw RpcError for what they validate themselves; stage errors
// (DatasetError, ImageFormatError, ...) are translated here, and anything else is INTERNAL.
// The field at fault and a retry hint also travel as trailers (`nnunet-error-field`,
// `grpc-retry-pushback-ms`), so SDKs can branch on them without parsing messages.
import * as grpc from '@grpc/grpc-js';
import { DatasetError } from '../dataset/errors.js';
import { ImageFormatError, VolumeTooLargeError } from '../io/errors.js';
import { ModelInstallError } from '../models/install.js';

export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    readonly field?: string,
    /** For RESOURCE_EXHAUSTED / UNAVAILABLE: when the client may try again. */
    readonly retryAfterMs?: number,
  ) {
    super(field ? `${field}: ${message}` : message);
    this.name = 'RpcError';
  }
}

export const invalidArgument = (field: string, reason: string) => new RpcError(grpc.status.INVALID_ARGUMENT, reason, field);
export const notFound = (what: string) => new RpcError(grpc.status.NOT_FOUND, what);

/** The client went away (or its deadline passed); work stops and nothing is sent. */
export class CallCancelledError extends Error {
  constructor() {
    super('the call was cancelled by the client');
    this.name = 'CallCancelledError';
  }
}

export function toServiceError(err: unknown): Partial<grpc.ServiceError> & { code: grpc.status } {
  if (err instanceof RpcError) {
    const metadata = new grpc.Metadata();
    if (err.field) metadata.set('nnunet-error-field', err.field);
    if (err.retryAfterMs !== undefined) metadata.set('grpc-retry-pushback-ms', String(Math.round(err.retryAfterMs)));
    return { code: err.code, details: err.message, metadata };
  }
  if (err instanceof CallCancelledError) return { code: grpc.status.CANCELLED, details: err.message };
  if (err instanceof VolumeTooLargeError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof ImageFormatError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof ModelInstallError && /already installed/.test(err.message)) return { code: grpc.status.ALREADY_EXISTS, details: err.message };
  if (err instanceof DatasetError) {
    const notFound = /not found|no dataset with id|does not exist/.test(err.message);
    return { code: notFound ? grpc.status.NOT_FOUND : grpc.status.INVALID_ARGUMENT, details: err.message };
  }
  return { code: grpc.status.INTERNAL, details: `internal error: ${(err as Error)?.message ?? String(err)}` };
}

/** Wraps an async unary handler so a thrown error becomes a status, never an unhandled rejection. */
export function unary<Req, Res>(fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request, call).then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err)),
    );
  };
}

/** Wraps an async client-streaming handler the same way. */
export function clientStreaming<Req, Res>(fn: (call: grpc.ServerReadableStream<Req, Res>) => Promise<Res>): grpc.handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    fn(call).then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err)),
    );
  };
}

/** A handler that answers UNIMPLEMENTED, naming what is missing. */
export function unimplemented(what: string): grpc.handleUnaryCall<unknown, unknown> {
  return (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: what });
}

/** Every method of a service answering UNIMPLEMENTED (streams included), until its stage exists. */
export function unimplementedService(definition: grpc.ServiceDefinition, what: string): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const status = { code: grpc.status.UNIMPLEMENTED, details: `${method.path}: ${what}` };
    if (!method.requestStream) {
      impl[name] = method.responseStream
        ? (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', status)
        : (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(status);
    } else {
      impl[name] = method.responseStream
        ? (call: grpc.ServerDuplexStream<unknown, unknown>) => call.emit('error', status)
        : (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(status);
    }
  }
  return impl;
}
