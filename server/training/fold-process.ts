// The child process of one training fold (DESIGN.md: every training runs in its own process that
// loads libtorch, so a native crash or an out-of-memory kills one fold, not the server). Receives
// {type: 'start', options} over IPC, streams FoldEvents back, exits 0 (finished or stopped) or 1.
// SIGTERM / SIGINT ask for a graceful stop: finish the iteration, write checkpoint_latest, exit.
import type { FoldEvent } from './events.js';
import { runFoldJob, type FoldJobOptions } from './fold-job.js';

let stopRequested = false;
const requestStop = () => {
  stopRequested = true;
};
process.on('SIGTERM', requestStop);
process.on('SIGINT', requestStop);

/** Settles once the newest message is written; IPC writes in order, so every earlier one is too. */
let flushed: Promise<void> = Promise.resolve();

function send(event: FoldEvent): void {
  if (!process.send || !process.connected) return;
  flushed = new Promise((resolve) => process.send?.(event, undefined, {}, () => resolve()));
}

async function finish(code: number, last?: FoldEvent): Promise<never> {
  if (last) send(last);
  // Every message is flushed before the exit (the send callbacks; IPC keeps their order), then
  // native threads (libtorch, onnxruntime) cannot keep the process alive.
  await flushed;
  process.exit(code);
}

process.once('message', (message: { type?: string; options?: FoldJobOptions }) => {
  if (message?.type !== 'start' || !message.options) {
    void finish(1, { type: 'failed', message: 'fold process: expected {type: "start", options}' });
    return;
  }
  runFoldJob(message.options, send, { stopRequested: () => stopRequested }).then(
    () => finish(0),
    (err: Error) => finish(1, { type: 'failed', message: err?.message ?? String(err), errorName: err?.name, stack: err?.stack }),
  );
});

// A parent that goes away takes its fold with it: nobody would see the events or stop it.
process.on('disconnect', () => {
  stopRequested = true;
});
