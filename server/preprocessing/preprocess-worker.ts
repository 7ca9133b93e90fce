// Worker-thread entry of the preprocessing pool: one case per task, off the main thread (nnU-Net
// uses a process pool). Errors travel back as data because a thrown error loses its class when it
// crosses threads. Loaded by URL, so it runs from dist/ after tsc and under tsx in tests alike.
import { preprocessCaseFiles, type CaseSummary, type CaseTask } from './case-files.js';

export type CaseOutcome = { ok: true; summary: CaseSummary } | { ok: false; name: string; message: string; stack?: string };

export default async function run(task: CaseTask): Promise<CaseOutcome> {
  try {
    return { ok: true, summary: await preprocessCaseFiles(task) };
  } catch (err) {
    const e = err as Error;
    return { ok: false, name: e.name, message: e.message, stack: e.stack };
  }
}
