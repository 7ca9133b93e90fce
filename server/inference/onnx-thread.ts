// An onnxruntime session in a worker thread of its own, for the server: onnxruntime-node runs a
// session synchronously on the calling JS thread, so a sliding window on the main thread would
// stall health checks and every other call for each tile's forward pass. Batches go to the thread
// by transfer and logits come back by transfer; one thread per loaded fold.
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import type { OnnxThreadData, OnnxThreadReply, OnnxThreadRequest } from './onnx-thread-worker.js';

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './onnx-thread-worker.dev.mjs' : './onnx-thread-worker.js', import.meta.url);

export class OnnxThreadSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: { data: Float32Array; shape: number[] }) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {
    worker.on('message', (m: OnnxThreadReply) => {
      if (m.type === 'ready') return;
      const waiter = this.pending.get(m.id);
      if (!waiter) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.type === 'result') waiter.resolve({ data: m.data, shape: m.dims });
      else waiter.reject(new Error(`onnxruntime: ${m.message}`));
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.pending.values()) w.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the onnxruntime thread exited (code ${code})`)));
    // Idle, the thread must not keep a finished process alive; a run in flight does.
    worker.unref();
  }

  /** Starts the thread and creates the session there; rejects with onnxruntime's message when it cannot. */
  static create(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<OnnxThreadSession> {
    const worker = new Worker(WORKER_URL, { workerData: { model, options } satisfies OnnxThreadData });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      const onExit = (code: number) => reject(new Error(`the onnxruntime thread exited (code ${code}) before its session was ready`));
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.once('message', (m: OnnxThreadReply) => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (m.type === 'ready') resolve(new OnnxThreadSession(worker, m.inputNames, m.outputNames));
        else {
          void worker.terminate();
          reject(new Error(m.type === 'error' ? m.message : 'unexpected first message from the onnxruntime thread'));
        }
      });
    });
  }

  /** Runs one batch; `batch` is transferred to the thread (the caller must not use it afterwards). */
  run(input: string, output: string, batch: Float32Array, shape: number[]): Promise<{ data: Float32Array; shape: number[] }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const result = new Promise<{ data: Float32Array; shape: number[] }>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.ref();
    const owned = batch.byteOffset === 0 && batch.byteLength === batch.buffer.byteLength && batch.buffer instanceof ArrayBuffer;
    this.worker.postMessage({ type: 'run', id, input, output, batch, shape } satisfies OnnxThreadRequest, owned ? [batch.buffer as ArrayBuffer] : []);
    return result;
  }

  async release(): Promise<void> {
    if (this.failure) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'release' } satisfies OnnxThreadRequest);
    await exited;
  }
}
