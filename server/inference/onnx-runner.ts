// Runs an exported network with onnxruntime-node (the default inference engine, DESIGN.md): async,
// multi-threaded MLAS kernels, no libtorch needed. One runner per fold.
import * as ort from 'onnxruntime-node';
import { ONNX_INPUT, ONNX_OUTPUT } from '../engine/onnx/export.js';

export interface RunnerOptions {
  /** Threads for one run; default: onnxruntime's choice (all cores). */
  intraOpThreads?: number;
}

export class OnnxRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly source: string,
  ) {}

  /** Loads a model from a file path or from serialised bytes. */
  static async load(model: string | Uint8Array, source: string, o: RunnerOptions = {}): Promise<OnnxRunner> {
    const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
    if (o.intraOpThreads) options.intraOpNumThreads = o.intraOpThreads;
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
    if (!session.inputNames.includes(ONNX_INPUT) || !session.outputNames.includes(ONNX_OUTPUT)) {
      throw new Error(`${source}: the ONNX model must have input "${ONNX_INPUT}" and output "${ONNX_OUTPUT}" (has ${session.inputNames} → ${session.outputNames})`);
    }
    return new OnnxRunner(session, source);
  }

  /** Runs a batch `[B, C, ...spatial]`; returns the logits `[B, K, ...spatial]` and their shape. */
  async run(batch: Float32Array, shape: number[]): Promise<{ data: Float32Array; shape: number[] }> {
    const input = new ort.Tensor('float32', batch, shape);
    const result = await this.session.run({ [ONNX_INPUT]: input });
    const out = result[ONNX_OUTPUT];
    const data = out.data as Float32Array;
    const dims = [...out.dims].map(Number);
    input.dispose?.();
    return { data, shape: dims };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
