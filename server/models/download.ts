// Downloads a model zip to a temporary file under the server's tmp dir, verified before anything
// is installed: nnU-Net streams to ~/.nnunetdownload_* and extracts whatever arrived, with no
// checksum, no resume and no size check (REFERENCE §9.1, SERVING.md §3.2-3.3); here
//  - redirects are followed (bounded; never from https down to http),
//  - an interrupted transfer resumes with `Range: bytes=N-` (accepted only as a 206 whose
//    Content-Range starts at N; a 200 restarts from zero), with bounded retries and backoff,
//  - Content-Length is checked against the size limit before a byte is written,
//  - the SHA-256 is computed while writing and compared before the caller sees the file.
// Written on node:http/https rather than fetch: we need the status and headers of each hop
// (redirects, 206 vs 200, Content-Range), a per-socket idle timeout, and to tell a body cut short
// (the response's `complete` flag) from one that ended; no extra dependency is needed for that.
import { createHash, type Hash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, open, type FileHandle } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type DownloadErrorKind = 'url' | 'http' | 'network' | 'truncated' | 'too-large' | 'size-mismatch' | 'sha256';

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly kind: DownloadErrorKind,
    /** Worth another attempt (connection dropped, 5xx, timeout). */
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

export interface DownloadOptions {
  /** Folder for the temporary download folder (the server's tmpDir). */
  tmpDir: string;
  /** Lowercase hex SHA-256 the bytes must have. */
  sha256: string;
  /** Refuse bodies larger than this (Content-Length checked before writing, and while writing). */
  maxBytes: number;
  /** Expected size (the catalog's size_bytes); a different Content-Length or final size fails. */
  expectedSize?: number;
  maxRedirects?: number;
  /** Attempts after the first, for retryable failures (default 4). */
  retries?: number;
  /** First backoff in ms, doubled each retry (default 1000). */
  backoffMs?: number;
  /** A connection silent for this long counts as dropped (default 60 s). */
  idleTimeoutMs?: number;
  onProgress?: (bytes: number, total: number | undefined) => void;
  /** Logs resumes, restarts and retries. */
  onEvent?: (message: string) => void;
  signal?: AbortSignal;
}

export interface DownloadedFile {
  file: string;
  sha256: string;
  sizeBytes: number;
  /** How many times the transfer resumed with a Range request. */
  resumes: number;
  /** Removes the temporary folder (call when done with `file`). */
  cleanup(): void;
}

interface Attempt {
  response: http.IncomingMessage;
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export function parseDownloadUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError(`not a valid URL: "${url}"`, 'url');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DownloadError(`only http and https URLs can be downloaded, got ${parsed.protocol} in "${url}"`, 'url');
  return parsed;
}

/** One GET, following redirects; resolves with the final response (headers read, body not yet). */
async function get(start: URL, headers: Record<string, string>, o: DownloadOptions): Promise<Attempt> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const lib = url.protocol === 'https:' ? https : http;
      const req = lib.get(url, { headers: { 'user-agent': 'nnunet-server', ...headers }, signal: o.signal }, resolve);
      req.setTimeout(o.idleTimeoutMs ?? 60_000, () => req.destroy(new DownloadError(`no data from ${url.host} for ${o.idleTimeoutMs ?? 60_000} ms`, 'network', true)));
      req.on('error', (err) => reject(err instanceof DownloadError ? err : new DownloadError(`${url.host}: ${err.message}`, 'network', !o.signal?.aborted)));
    });
    if (!REDIRECTS.has(response.statusCode ?? 0)) return { response, url };
    response.resume();
    const location = response.headers.location;
    if (!location) throw new DownloadError(`${url.href} answered ${response.statusCode} without a Location header`, 'http');
    if (hop >= (o.maxRedirects ?? 5)) throw new DownloadError(`more than ${o.maxRedirects ?? 5} redirects, last to ${location}`, 'http');
    const next = new URL(location, url);
    if (url.protocol === 'https:' && next.protocol !== 'https:') throw new DownloadError(`refusing a redirect from https to ${next.protocol} (${next.href})`, 'http');
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new DownloadError(`refusing a redirect to ${next.href}`, 'http');
    url = next;
  }
}

/** `bytes START-END/TOTAL` → numbers; undefined when malformed. */
function parseContentRange(value: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** Downloads `url`; the caller installs `file` and then calls cleanup(). Nothing is left behind on failure. */
export async function downloadFile(url: string, o: DownloadOptions): Promise<DownloadedFile> {
  const start = parseDownloadUrl(url);
  if (!/^[0-9a-f]{64}$/.test(o.sha256)) throw new DownloadError('the expected SHA-256 must be 64 lowercase hex characters', 'url');
  if (o.expectedSize !== undefined && o.expectedSize > o.maxBytes) {
    throw new DownloadError(`the model is ${o.expectedSize} bytes, more than the server's limit of ${o.maxBytes} (NNUNET_MAX_UPLOAD_BYTES)`, 'too-large');
  }
  mkdirSync(o.tmpDir, { recursive: true });
  const dir = await mkdtemp(join(o.tmpDir, 'nnunet-download-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const file = join(dir, 'model.zip.part');
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'w');
    let hash: Hash = createHash('sha256');
    let received = 0;
    let total: number | undefined;
    let validator: string | undefined;
    let resumes = 0;
    let failures = 0;
    const retries = o.retries ?? 4;
    for (;;) {
      try {
        const headers: Record<string, string> = {};
        if (received > 0) {
          headers.range = `bytes=${received}-`;
          if (validator) headers['if-range'] = validator;
        }
        const { response, url: finalUrl } = await get(start, headers, o);
        const status = response.statusCode ?? 0;
        if (received > 0 && status === 206) {
          const range = parseContentRange(response.headers['content-range']);
          if (!range || range.start !== received) {
            response.resume();
            throw new DownloadError(`${finalUrl.host} answered the Range request with Content-Range "${response.headers['content-range'] ?? ''}", not starting at byte ${received}`, 'http', true);
          }
          total = range.total ?? total;
          resumes++;
          o.onEvent?.(`resuming at byte ${received}${total !== undefined ? ` of ${total}` : ''}`);
        } else if (status === 200) {
          if (received > 0) {
            o.onEvent?.(`${finalUrl.host} ignored the Range request (200): restarting from byte 0`);
            received = 0;
            hash = createHash('sha256');
            await fh.truncate(0);
          }
          const length = response.headers['content-length'];
          total = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
          validator = response.headers.etag ?? response.headers['last-modified'];
        } else {
          response.resume();
          const retryable = status >= 500 || status === 408 || status === 429;
          throw new DownloadError(`${finalUrl.href} answered HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`, 'http', retryable);
        }
        if (total !== undefined && total > o.maxBytes) {
          response.destroy();
          throw new DownloadError(`the server announces ${total} bytes, more than the limit of ${o.maxBytes} (NNUNET_MAX_UPLOAD_BYTES or the catalog's size_bytes)`, 'too-large');
        }
        if (total !== undefined && o.expectedSize !== undefined && total !== o.expectedSize) {
          response.destroy();
          throw new DownloadError(`the server announces ${total} bytes, but the catalog says the model is ${o.expectedSize} bytes`, 'size-mismatch');
        }
        try {
          for await (const chunk of response as AsyncIterable<Buffer>) {
            if (received + chunk.length > o.maxBytes) throw new DownloadError(`the download exceeds the limit of ${o.maxBytes} bytes`, 'too-large');
            await fh.write(chunk, 0, chunk.length, received);
            hash.update(chunk);
            received += chunk.length;
            o.onProgress?.(received, total);
          }
        } catch (err) {
          response.destroy();
          if (err instanceof DownloadError) throw err;
          if (o.signal?.aborted) throw err;
          // fall through: the connection dropped mid-body; the size check below decides
        }
        if (total !== undefined && received < total) {
          throw new DownloadError(`the connection closed after ${received} of ${total} bytes`, 'truncated', true);
        }
        if (total === undefined && !response.complete) {
          throw new DownloadError(`the connection closed after ${received} bytes, before the end of the body`, 'truncated', true);
        }
        break;
      } catch (err) {
        if (o.signal?.aborted) throw new DownloadError('the download was cancelled', 'network');
        if (!(err instanceof DownloadError) || !err.retryable) throw err;
        failures++;
        if (failures > retries) {
          throw new DownloadError(`${err.message}; gave up after ${failures} attempt(s)${resumes > 0 ? ` (${resumes} resumed)` : ''}`, err.kind);
        }
        const wait = (o.backoffMs ?? 1000) * 2 ** (failures - 1);
        o.onEvent?.(`${err.message}; retrying in ${wait} ms (attempt ${failures + 1} of ${retries + 1})`);
        await sleep(wait, undefined, { signal: o.signal }).catch(() => {
          throw new DownloadError('the download was cancelled', 'network');
        });
      }
    }
    await fh.close();
    fh = undefined;
    if (o.expectedSize !== undefined && received !== o.expectedSize) {
      throw new DownloadError(`downloaded ${received} bytes, but the catalog says the model is ${o.expectedSize} bytes`, 'size-mismatch');
    }
    const sha256 = hash.digest('hex');
    if (sha256 !== o.sha256) throw new DownloadError(`SHA-256 mismatch: expected ${o.sha256}, the ${received} bytes downloaded hash to ${sha256}; nothing was installed`, 'sha256');
    return { file, sha256, sizeBytes: received, resumes, cleanup };
  } catch (err) {
    await fh?.close().catch(() => {});
    cleanup();
    throw err;
  }
}
