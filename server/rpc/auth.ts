// Bearer-token auth (SERVING.md §4.8) as a server interceptor, so it covers every method in one
// place. Tokens come from NNUNET_TOKENS_FILE (JSON {"token": "admin" | "read"}) and/or
// NNUNET_ADMIN_TOKEN / NNUNET_READ_TOKEN. Admin is needed for anything that changes data:
// uploads, training, model install/delete; reads and Predict need any valid token. Health and
// reflection stay open, since Kubernetes probes and grpcurl cannot send tokens. With no tokens
// configured auth is off (main.ts logs that loudly).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ServerConfig } from '../config.js';

export type Role = 'admin' | 'read';

/** nnunet.v1 methods a read-only token may call; every other nnunet.v1 method needs admin. */
const READ_METHODS = new Set([
  'nnunet.v1.ServerService/GetServerInfo',
  'nnunet.v1.ModelService/ListModels',
  'nnunet.v1.ModelService/GetModel',
  'nnunet.v1.ModelService/ListPretrainedModels',
  'nnunet.v1.DatasetService/ListDatasets',
  'nnunet.v1.DatasetService/GetDataset',
  'nnunet.v1.DatasetService/VerifyDataset',
  'nnunet.v1.InferenceService/Predict',
  'nnunet.v1.TrainingService/WatchJob',
  'nnunet.v1.TrainingService/ListJobs',
  'nnunet.v1.TrainingService/GetJob',
]);

/** The role a method needs, or undefined when it is open (health, reflection). */
export function requiredRole(path: string): Role | undefined {
  const name = path.replace(/^\//, '');
  if (!name.startsWith('nnunet.')) return undefined;
  return READ_METHODS.has(name) ? 'read' : 'admin';
}

/** Tokens from the configuration; an empty map means auth is off. */
export function loadTokens(config: Pick<ServerConfig, 'tokensFile' | 'adminToken' | 'readToken'>): Map<string, Role> {
  const tokens = new Map<string, Role>();
  if (config.tokensFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(config.tokensFile, 'utf8'));
    } catch (err) {
      throw new Error(`NNUNET_TOKENS_FILE ${config.tokensFile}: ${(err as Error).message}`, { cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`NNUNET_TOKENS_FILE ${config.tokensFile}: must be a JSON object {"token": "admin" | "read"}`);
    for (const [token, role] of Object.entries(parsed)) {
      if (role !== 'admin' && role !== 'read') throw new Error(`NNUNET_TOKENS_FILE ${config.tokensFile}: role must be "admin" or "read", got ${JSON.stringify(role)}`);
      if (token.length < 16) throw new Error(`NNUNET_TOKENS_FILE ${config.tokensFile}: tokens must have at least 16 characters`);
      tokens.set(token, role);
    }
  }
  if (config.adminToken) tokens.set(config.adminToken, 'admin');
  if (config.readToken && !tokens.has(config.readToken)) tokens.set(config.readToken, 'read');
  return tokens;
}

/** Compares by hashes so the time taken tells nothing about how much of a token matched. */
function findRole(tokens: Map<string, Role>, presented: string): Role | undefined {
  const digest = createHash('sha256').update(presented).digest();
  let found: Role | undefined;
  for (const [token, role] of tokens) {
    if (timingSafeEqual(digest, createHash('sha256').update(token).digest())) found = role;
  }
  return found;
}

export function authInterceptor(tokens: Map<string, Role>): grpc.ServerInterceptor {
  return (method, call) => {
    const needed = requiredRole(method.path);
    if (!needed || tokens.size === 0) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const header = String(metadata.get('authorization')[0] ?? '');
            const match = /^Bearer\s+(\S+)$/i.exec(header);
            if (!match) {
              call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: `${method.path} needs a token: send the metadata "authorization: Bearer <token>"` });
              return;
            }
            const role = findRole(tokens, match[1]);
            if (!role) {
              call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'the bearer token is not valid on this server' });
              return;
            }
            if (needed === 'admin' && role !== 'admin') {
              call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: `${method.path} changes data and needs an admin token; this token is read-only` });
              return;
            }
            mdNext(metadata);
          },
        });
      },
    });
  };
}
