// Worker-thread side of OnnxThreadSession (onnx-thread.ts): owns one onnxruntime session and runs
// it on request. onnxruntime-node's run() is synchronous on the calling JS thread (its async API
// only defers it with setImmediate), so in the server's main thread every tile would block the
// event loop for the length of a forward pass; here it blocks only this thread.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export interface OnnxThreadData {
  model: string | Uint8Array;
  options: ort.InferenceSession.SessionOptions;
}

export type OnnxThreadRequest = { type: 'run'; id: number; input: string; output: string; batch: Float32Array; shape: number[] } | { type: 'release' };

export type OnnxThreadReply =
  | { type: 'ready'; inputNames: readonly string[]; outputNames: readonly string[] }
  | { type: 'result'; id: number; data: Float32Array; dims: number[] }
  | { type: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('onnx-thread-worker must run in a worker thread');
const { model, options } = workerData as OnnxThreadData;

try {
  const session = await ort.InferenceSession.create(model as string, options);
  port.on('message', (m: OnnxThreadRequest) => {
    if (m.type === 'release') {
      void session.release().finally(() => port.close());
      return;
    }
    void (async () => {
      try {
        const input = new ort.Tensor('float32', m.batch, m.shape);
        const result = await session.run({ [m.input]: input });
        const out = result[m.output];
        const reply: OnnxThreadReply = { type: 'result', id: m.id, data: out.data as Float32Array, dims: [...out.dims].map(Number) };
        try {
          port.postMessage(reply, [reply.data.buffer as ArrayBuffer]);
        } catch {
          // onnxruntime may own the output's memory (not detachable): send a copy instead.
          port.postMessage({ ...reply, data: (out.data as Float32Array).slice() });
        }
      } catch (err) {
        port.postMessage({ type: 'error', id: m.id, message: (err as Error).message } satisfies OnnxThreadReply);
      }
    })();
  });
  port.postMessage({ type: 'ready', inputNames: session.inputNames, outputNames: session.outputNames } satisfies OnnxThreadReply);
} catch (err) {
  port.postMessage({ type: 'error', id: 0, message: (err as Error).message } satisfies OnnxThreadReply);
}
