// Maps stage errors to gRPC status codes with messages a person can act on (DESIGN.md "Errors").
import * as grpc from '@grpc/grpc-js';
import { DatasetError } from '../dataset/errors.js';
import { ImageFormatError, VolumeTooLargeError } from '../io/errors.js';

export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof VolumeTooLargeError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  if (err instanceof ImageFormatError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof DatasetError) {
    const notFound = /not found|no dataset with id/.test(err.message);
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
