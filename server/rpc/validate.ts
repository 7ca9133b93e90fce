// Validation of every name and path a client sends, before any of it reaches the file system:
// names are checked against a strict pattern (no '/', no leading '.', so no traversal and no
// hidden files), and resolved paths are checked to stay under their root. Errors name the field.
import { resolve, sep } from 'node:path';
import { invalidArgument, RpcError } from './errors.js';
import * as grpc from '@grpc/grpc-js';

/** Case ids, dataset short names, trainer/plans/configuration names (nnU-Net's own names fit). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAX_NAME_LENGTH = 200;

export function checkName(field: string, value: unknown, what = 'name'): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidArgument(field, `${what} is required`);
  if (value.length > MAX_NAME_LENGTH) throw invalidArgument(field, `${what} is longer than ${MAX_NAME_LENGTH} characters`);
  if (!NAME_PATTERN.test(value) || value.includes('..')) {
    throw invalidArgument(field, `${what} "${value}" may only contain letters, digits, '_', '.', '-', start with a letter or digit, and not contain ".."`);
  }
  return value;
}

/** A dataset reference: an id ("4", "004") or a folder name ("Dataset004_Hippocampus"). */
export function checkDatasetRef(field: string, value: unknown): string {
  if (typeof value === 'string' && /^\d{1,3}$/.test(value)) return value;
  const name = checkName(field, value, 'dataset');
  if (!/^(Dataset|Task)\d{3}_/.test(name)) throw invalidArgument(field, `dataset "${name}" is neither an id (e.g. 4) nor a folder name (e.g. Dataset004_Name)`);
  return name;
}

export function checkFold(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^(\d|all)$/.test(value)) throw invalidArgument(field, `fold must be "0".."9" or "all", got ${JSON.stringify(value)}`);
  return value;
}

/** `path` resolved; refuses anything outside `root` (defence in depth behind checkName). */
export function insideRoot(root: string, ...parts: string[]): string {
  const base = resolve(root);
  const path = resolve(base, ...parts);
  if (path !== base && !path.startsWith(base + sep)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `path escapes its root: ${parts.join('/')}`);
  return path;
}

/** A declared byte size: positive, and refused before allocation when over the limit. */
export function checkDeclaredSize(field: string, value: unknown, limit: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw invalidArgument(field, `must be a positive byte count, got ${String(value)}`);
  if (n > limit) {
    throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, `${n} bytes declared, more than the server's limit of ${limit} (NNUNET_MAX_UPLOAD_BYTES)`, field);
  }
  return n;
}

export function checkSha256(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw invalidArgument(field, 'must be a lowercase hex SHA-256 (64 characters)');
  return value;
}
