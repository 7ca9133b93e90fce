// Loads the public API from protos/ with @grpc/proto-loader: the .proto files are the single
// source of the wire types (DESIGN.md), for our server and for clients generated in other languages.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../config.js';

export const PROTO_DIR = () => join(projectRoot(), 'protos');

export function protoFiles(): string[] {
  const dir = join(PROTO_DIR(), 'nnunet', 'v1');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => join('nnunet', 'v1', f));
}

export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

let cached: grpc.GrpcObject | undefined;
let cachedDefinition: protoLoader.PackageDefinition | undefined;

/** The loaded package definition (for server reflection). */
export function packageDefinition(): protoLoader.PackageDefinition {
  return (cachedDefinition ??= protoLoader.loadSync(protoFiles(), { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR()] }));
}

/** The `nnunet.v1` package object: service constructors for clients and service definitions for the server. */
export function nnunetV1(): grpc.GrpcObject {
  if (!cached) {
    const root = grpc.loadPackageDefinition(packageDefinition());
    cached = (root.nnunet as grpc.GrpcObject).v1 as grpc.GrpcObject;
  }
  return cached;
}

export function serviceDefinition(name: string): grpc.ServiceDefinition {
  const ctor = nnunetV1()[name] as grpc.ServiceClientConstructor | undefined;
  if (!ctor) throw new Error(`service nnunet.v1.${name} is not defined in ${PROTO_DIR()}`);
  return ctor.service;
}
