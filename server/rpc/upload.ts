// Receives one chunked file from a client stream (UploadCase, InstallModel): a header, the bytes,
// the SHA-256 last (SERVING.md §4.3). The declared size is checked against the limit before
// anything is stored; bytes go to a temporary file as they arrive (reading waits for each write,
// which is the stream's back-pressure), are hashed on the way, and the temporary file is removed
// on any error or when the client goes away. The caller renames it into place on success.
import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { ServerMetrics } from '../metrics.js';
import type { SurfaceCall } from './context.js';
import { CallCancelledError, invalidArgument, RpcError } from './errors.js';
import { checkSha256 } from './validate.js';

/** The wire shape shared by UploadCaseRequest and InstallModelRequest (proto-loader, oneofs). */
export interface UploadMessage<H> {
  payload?: 'header' | 'chunk' | 'sha256';
  header?: H | null;
  chunk?: Buffer;
  sha256?: string;
}

export interface ReceivedFile<H> {
  header: H;
  tmpFile: string;
  sizeBytes: number;
  sha256: string;
}

export interface ReceiveOptions<H, V> {
  method: string;
  metrics: ServerMetrics;
  /** Validates the header (throws RpcError naming the field) and says where the bytes go. */
  onHeader(header: H): Promise<{ value: V; sizeBytes: number; tmpFile: string }>;
}

/** A promise that rejects when the call is cancelled, so reads never wait for a client that left. */
export function whenCancelled(call: SurfaceCall): { promise: Promise<never>; dispose(): void } {
  let onCancel = () => {};
  const promise = new Promise<never>((_resolve, reject) => {
    onCancel = () => reject(new CallCancelledError());
    if (call.cancelled) onCancel();
    else call.once('cancelled', onCancel);
  });
  promise.catch(() => {}); // observed by the racing reader; never an unhandled rejection
  return { promise, dispose: () => call.removeListener('cancelled', onCancel) };
}

export async function receiveChunkedFile<H, V>(call: grpc.ServerReadableStream<UploadMessage<H>, unknown>, o: ReceiveOptions<H, V>): Promise<ReceivedFile<V>> {
  const cancelled = whenCancelled(call);
  // destroyOnReturn false: ending the iteration must not destroy the call before the reply is sent.
  const iterator = call.iterator({ destroyOnReturn: false }) as AsyncIterator<UploadMessage<H>>;
  let handle: FileHandle | undefined;
  let tmpFile: string | undefined;
  try {
    let target: { value: V; sizeBytes: number; tmpFile: string } | undefined;
    let received = 0;
    let sha256: string | undefined;
    const hash = createHash('sha256');
    for (;;) {
      const next = await Promise.race([iterator.next(), cancelled.promise]);
      if (next.done) break;
      const message = next.value;
      if (sha256 !== undefined) throw invalidArgument('sha256', 'the SHA-256 must be the last message; more followed it');
      if (!target) {
        if (message.payload !== 'header' || !message.header) throw invalidArgument('header', 'the first message must be the header');
        target = await o.onHeader(message.header);
        tmpFile = target.tmpFile;
        handle = await open(tmpFile, 'wx');
        continue;
      }
      if (message.payload === 'header') throw invalidArgument('header', 'only the first message may be a header');
      if (message.payload === 'sha256') {
        sha256 = checkSha256('sha256', message.sha256);
        continue;
      }
      const chunk = message.chunk ?? Buffer.alloc(0);
      received += chunk.length;
      o.metrics.receivedBytes.inc({ grpc_method: o.method }, chunk.length);
      if (received > target.sizeBytes) {
        throw new RpcError(grpc.status.OUT_OF_RANGE, `more bytes arrived (${received}) than the header declared (${target.sizeBytes})`, 'chunk');
      }
      hash.update(chunk);
      await Promise.race([handle!.write(chunk), cancelled.promise]);
    }
    if (!target) throw invalidArgument('header', 'the stream ended before the header');
    if (received !== target.sizeBytes) throw invalidArgument('chunk', `received ${received} of the ${target.sizeBytes} bytes the header declared`);
    if (sha256 === undefined) throw invalidArgument('sha256', 'the stream ended without the SHA-256 of the file');
    const actual = hash.digest('hex');
    // DATA_LOSS: the bytes were corrupted on the way; the client should send the file again.
    if (actual !== sha256) throw new RpcError(grpc.status.DATA_LOSS, `SHA-256 mismatch: the client sent ${sha256}, the bytes received hash to ${actual}; upload the file again`, 'sha256');
    await handle!.close();
    handle = undefined;
    return { header: target.value, tmpFile: target.tmpFile, sizeBytes: received, sha256: actual };
  } catch (err) {
    await handle?.close().catch(() => {});
    if (tmpFile) await rm(tmpFile, { force: true });
    throw err;
  } finally {
    cancelled.dispose();
  }
}
