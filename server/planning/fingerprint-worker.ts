// Worker-thread entry for the fingerprint pool: analyses one case off the main thread, as nnU-Net
// uses a process pool for the same job. Only the small histograms travel back; errors travel as
// data because a thrown error loses its class when it crosses threads.
import { analyzeCase, type CaseFingerprint } from './fingerprint-case.js';

export interface CaseTask {
  images: string[];
  label: string;
  samplesPerChannel: number;
}

export type CaseOutcome = { ok: true; result: CaseFingerprint } | { ok: false; name: string; message: string; stack?: string };

export default async function run(task: CaseTask): Promise<CaseOutcome> {
  try {
    return { ok: true, result: await analyzeCase(task.images, task.label, task.samplesPerChannel) };
  } catch (err) {
    const e = err as Error;
    return { ok: false, name: e.name, message: e.message, stack: e.stack };
  }
}
