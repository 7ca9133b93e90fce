// Progress on the terminal for the CLI: cli-progress bars when stderr is a TTY, a few plain lines
// otherwise (logs, CI, tests), so redirected output stays readable.
import cliProgress from 'cli-progress';
import type { CommandIO } from './commands/types.js';

export const isTty = (): boolean => Boolean(process.stderr.isTTY);

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

export interface ByteProgress {
  update(sent: number, total: number): void;
  stop(): void;
}

/** A bar of bytes sent (uploads); off a terminal, one line when the upload is complete. */
export function byteProgress(io: CommandIO, label: string, tty = isTty()): ByteProgress {
  let bar: cliProgress.SingleBar | undefined;
  let reported = false;
  return {
    update(sent, total) {
      if (tty) {
        if (!bar) {
          bar = new cliProgress.SingleBar({ format: `${label} {bar} {percentage}% | {sentMb} of {totalMb}`, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
          bar.start(total, 0, { sentMb: mb(0), totalMb: mb(total) });
        }
        bar.update(sent, { sentMb: mb(sent), totalMb: mb(total) });
      } else if (sent >= total && !reported) {
        reported = true;
        io.stderr(`${label}: ${mb(total)} sent`);
      }
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

/** A bar of items done (cases predicted) with a status text; nothing off a terminal (callers print lines). */
export function countProgress(total: number, label: string, tty = isTty()) {
  const bar = tty ? new cliProgress.SingleBar({ format: `${label} {bar} {value}/{total} | {status}`, hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(total, 0, { status: '' });
  return {
    status(text: string) {
      bar?.update({ status: text });
    },
    done(value: number, text: string) {
      bar?.update(value, { status: text });
    },
    stop() {
      bar?.stop();
    },
    tty: Boolean(bar),
  };
}
