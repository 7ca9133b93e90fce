// Worker-thread entry of the prediction pool (case-work.ts): runs one preprocess or export stage
// per task. Large typed arrays go back by transfer, not copy; errors travel back as data, because
// a thrown error loses its class (and with it its gRPC status) when it crosses threads.
import { Piscina } from 'piscina';
import { exportStage, preprocessStage, type ExportTask, type FinishedCase, type PreparedCase, type PreprocessTask } from './case-stages.js';

export type CaseWorkerTask = { stage: 'preprocess'; task: PreprocessTask } | { stage: 'export'; task: ExportTask };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** ImageFormatError's fields, so the error is rebuilt with the same message and class. */
  file?: string;
  reason?: string;
}

export type CaseWorkerOutcome = { ok: true; result: PreparedCase | FinishedCase } | { ok: false; error: SerializedError };

/** The buffers of these views, once each; a view over part of a shared buffer (e.g. Node's Buffer pool) is never transferred. */
export function ownedBuffers(views: (ArrayBufferView | undefined)[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const v of views) {
    if (v && v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) buffers.add(v.buffer);
  }
  return [...buffers];
}

function transferables(result: PreparedCase | FinishedCase): ArrayBuffer[] {
  if ('data' in result) return ownedBuffers([result.data]);
  return ownedBuffers([result.segmentation, result.probabilities, result.encoded.segmentation, result.encoded.probabilities]);
}

export default async function run(message: CaseWorkerTask): Promise<unknown> {
  let outcome: CaseWorkerOutcome;
  try {
    outcome = { ok: true, result: message.stage === 'preprocess' ? await preprocessStage(message.task) : exportStage(message.task) };
  } catch (err) {
    const e = err as Error & { file?: unknown; reason?: unknown };
    const error: SerializedError = { name: e.name, message: e.message, stack: e.stack };
    if (typeof e.file === 'string') error.file = e.file;
    if (typeof e.reason === 'string') error.reason = e.reason;
    return { ok: false, error } satisfies CaseWorkerOutcome;
  }
  // piscina's Transferable protocol: the value to return and the buffers to move with it.
  const movable = { [Piscina.transferableSymbol]: transferables(outcome.result), [Piscina.valueSymbol]: outcome };
  return Piscina.move(movable as unknown as Parameters<typeof Piscina.move>[0]);
}
