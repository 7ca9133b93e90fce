// Runs an exported network with onnxruntime-node (the default inference engine, DESIGN.md):
// multi-threaded MLAS kernels, no libtorch needed. One runner per fold. onnxruntime-node runs a
// session synchronously on the calling JS thread; the server asks for `thread: true`, which keeps
// the session in a worker thread of its own (onnx-thread.ts) so the event loop stays free.
import * as ort from 'onnxruntime-node';
import { ONNX_INPUT, ONNX_OUTPUT } from '../engine/onnx/export.js';
import { OnnxThreadSession } from './onnx-thread.js';

export interface RunnerOptions {
  /** Threads for one run; default: onnxruntime's choice (all cores). */
  intraOpThreads?: number;
  /** Run the session in a worker thread of its own instead of on the calling thread. */
  thread?: boolean;
  /**
   * onnxruntime execution providers in priority order (NNUNET_ONNX_PROVIDERS), default ['cpu'];
   * e.g. ['cuda', 'cpu'] with onnxruntime-node's CUDA libraries installed. One that cannot load
   * fails the model load with a message naming it (no silent fallback to the CPU).
   */
  executionProviders?: string[];
}

type Session = { kind: 'here'; session: ort.InferenceSession } | { kind: 'thread'; session: OnnxThreadSession };

export class OnnxRunner {
  private constructor(
    private readonly session: Session,
    readonly source: string,
  ) {}

  /** Loads a model from a file path or from serialised bytes. */
  static async load(model: string | Uint8Array, source: string, o: RunnerOptions = {}): Promise<OnnxRunner> {
    const providers = o.executionProviders ?? ['cpu'];
    const options: ort.InferenceSession.SessionOptions = { executionProviders: providers, graphOptimizationLevel: 'all' };
    if (o.intraOpThreads) options.intraOpNumThreads = o.intraOpThreads;
    let session: Session;
    try {
      if (o.thread) session = { kind: 'thread', session: await OnnxThreadSession.create(model, options) };
      else session = { kind: 'here', session: typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options) };
    } catch (err) {
      if (providers.length === 1 && providers[0] === 'cpu') throw err;
      const offered = ort.listSupportedBackends().map((b) => `${b.name}${b.bundled ? '' : ' (needs its libraries installed)'}`);
      const reason = String((err as Error).message).split('\n')[0].slice(0, 300);
      throw new Error(`${source}: onnxruntime could not create a session with the execution providers [${providers.join(', ')}] (NNUNET_ONNX_PROVIDERS): ${reason}; this onnxruntime-node offers ${offered.join(', ')}`, { cause: err });
    }
    const { inputNames, outputNames } = session.session;
    if (!inputNames.includes(ONNX_INPUT) || !outputNames.includes(ONNX_OUTPUT)) {
      await session.session.release();
      throw new Error(`${source}: the ONNX model must have input "${ONNX_INPUT}" and output "${ONNX_OUTPUT}" (has ${inputNames} → ${outputNames})`);
    }
    return new OnnxRunner(session, source);
  }

  /** Runs a batch `[B, C, ...spatial]`; returns the logits `[B, K, ...spatial]` and their shape. On a thread, `batch` is transferred. */
  async run(batch: Float32Array, shape: number[]): Promise<{ data: Float32Array; shape: number[] }> {
    if (this.session.kind === 'thread') return this.session.session.run(ONNX_INPUT, ONNX_OUTPUT, batch, shape);
    const input = new ort.Tensor('float32', batch, shape);
    const result = await this.session.session.run({ [ONNX_INPUT]: input });
    const out = result[ONNX_OUTPUT];
    const data = out.data as Float32Array;
    const dims = [...out.dims].map(Number);
    input.dispose?.();
    return { data, shape: dims };
  }

  async release(): Promise<void> {
    await this.session.session.release();
  }
}
