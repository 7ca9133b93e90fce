// Streaming helpers of the SDK: sending a file as header + chunks + SHA-256 over a client stream
// (UploadCase, InstallModel), and receiving Predict's outputs into files that appear only once
// complete and checksummed. Writes wait for 'drain', so a large file never sits in memory.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';

/** A writable call: a client stream or the request side of a bidirectional one. */
export interface WritableCall {
  write(message: object): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export async function writeWithBackpressure(call: WritableCall, message: object): Promise<void> {
  if (!call.write(message)) await once(call as unknown as NodeJS.EventEmitter, 'drain');
}

/** Called after each chunk is handed to the transport: bytes sent so far of `total`. */
export type TransferProgress = (sent: number, total: number) => void;

/** Sends `file`'s bytes as messages made by `wrap`, chunk by chunk; returns the SHA-256 (hex). */
export async function sendFileChunks(call: WritableCall, file: string, chunkSize: number, wrap: (data: Buffer) => object, onProgress?: TransferProgress): Promise<string> {
  const hash = createHash('sha256');
  const total = onProgress ? (await stat(file)).size : 0;
  let sent = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: chunkSize })) {
    const data = chunk as Buffer;
    hash.update(data);
    await writeWithBackpressure(call, wrap(data));
    sent += data.length;
    onProgress?.(sent, total);
  }
  return hash.digest('hex');
}

/** Uploads one file over a client-streaming call: header, chunks, then the SHA-256. */
export async function uploadFile<Res>(
  start: (callback: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientWritableStream<object>,
  header: object,
  file: string,
  chunkSize: number,
  onProgress?: TransferProgress,
): Promise<Res> {
  const { size } = await stat(file);
  let call!: grpc.ClientWritableStream<object>;
  const result = new Promise<Res>((resolve, reject) => {
    call = start((err, res) => (err ? reject(err) : resolve(res!)));
  });
  // The server may refuse before we finish sending; the status is read below, not lost.
  result.catch(() => {});
  try {
    await writeWithBackpressure(call, { header: { ...header, size_bytes: size } });
    const sha256 = await sendFileChunks(call, file, chunkSize, (chunk) => ({ chunk }), onProgress);
    await writeWithBackpressure(call, { sha256 });
    call.end();
  } catch (err) {
    // The server may have ended the call early (e.g. a refused header): its status says why.
    call.cancel();
    return result.catch(() => Promise.reject(err));
  }
  return result;
}

/** Where Predict's output chunks go. */
export interface OutputSink {
  write(offset: number, data: Uint8Array): Promise<void>;
  commit(expectedSize: number, expectedSha256: string): Promise<void>;
  discard(): Promise<void>;
}

/** An output kept in memory (small outputs, or callers that forward the bytes elsewhere). */
export class MemoryOutput implements OutputSink {
  private readonly chunks: Uint8Array[] = [];
  private readonly hash = createHash('sha256');
  private written = 0;

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset !== this.written) throw new Error(`output chunk at offset ${offset}, expected ${this.written}`);
    this.chunks.push(data);
    this.hash.update(data);
    this.written += data.length;
  }

  async commit(expectedSize: number, expectedSha256: string): Promise<void> {
    const actual = this.hash.digest('hex');
    if (this.written !== expectedSize) throw new Error(`received ${this.written} of ${expectedSize} output bytes`);
    if (expectedSha256 && actual !== expectedSha256) throw new Error(`output SHA-256 mismatch (server ${expectedSha256}, received ${actual})`);
  }

  async discard(): Promise<void> {
    this.chunks.length = 0;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** An output file written under a temporary name, renamed when complete and checksummed. */
export class OutputFile implements OutputSink {
  private handle?: FileHandle;
  private readonly tmp: string;
  private readonly hash = createHash('sha256');
  written = 0;

  constructor(readonly path: string) {
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(16).slice(2)}.part`);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset !== this.written) throw new Error(`${this.path}: chunk at offset ${offset}, expected ${this.written}`);
    this.handle ??= await open(this.tmp, 'w');
    await this.handle.write(data);
    this.hash.update(data);
    this.written += data.length;
  }

  /** Checks size and SHA-256, then renames into place. */
  async commit(expectedSize: number, expectedSha256: string): Promise<void> {
    this.handle ??= await open(this.tmp, 'w');
    await this.handle.close();
    this.handle = undefined;
    const actual = this.hash.digest('hex');
    if (this.written !== expectedSize) throw new Error(`${this.path}: received ${this.written} of ${expectedSize} bytes`);
    if (expectedSha256 && actual !== expectedSha256) throw new Error(`${this.path}: SHA-256 mismatch (server ${expectedSha256}, received ${actual})`);
    await rename(this.tmp, this.path);
  }

  async discard(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    await rm(this.tmp, { force: true });
  }
}
