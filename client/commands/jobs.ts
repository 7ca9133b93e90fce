// Following a server job from a command: its log lines as output, its progress as a bar on a
// terminal, and its end as the command's result (a job that did not succeed is an error with
// the job's own reason).
import cliProgress from 'cli-progress';
import type { Job, JobEvent, NnunetClient } from '../sdk/index.js';
import { isTty } from '../progress.js';

/** The job ended FAILED or CANCELLED; the message is the server's reason. */
export class JobFailedError extends Error {
  constructor(
    message: string,
    readonly job: Job,
  ) {
    super(message);
    this.name = 'JobFailedError';
  }
}

export interface FollowOptions {
  /** Where a LOG event's message goes (default: nowhere). */
  onLog?: (message: string) => void;
  signal?: AbortSignal;
  /** Label of the terminal progress bar. */
  label?: string;
}

/** Follows `job` to its end; resolves with the final Job when it SUCCEEDED, throws JobFailedError otherwise. */
export async function followJob(client: NnunetClient, job: Job, o: FollowOptions = {}): Promise<Job> {
  const bar = isTty() ? new cliProgress.SingleBar({ format: `${o.label ?? 'job'} {bar} {percentage}% | {status}`, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(100, 0, { status: 'queued' });
  const onEvent = (e: JobEvent) => {
    if (e.type === 'JOB_EVENT_TYPE_LOG' && o.onLog) {
      if (bar) bar.stop();
      o.onLog(e.message);
      if (bar) bar.start(100, Math.round(e.progress * 100), { status: '' });
    } else bar?.update(Math.round(e.progress * 100), { status: e.message });
  };
  let done: Job;
  try {
    done = await client.waitForJob(job.id, onEvent, { signal: o.signal });
  } finally {
    bar?.stop();
  }
  return checkJob(done);
}

/** The job when it SUCCEEDED, else JobFailedError with its reason. */
export function checkJob(job: Job): Job {
  if (job.state === 'JOB_STATE_SUCCEEDED') return job;
  const state = job.state.replace(/^JOB_STATE_/, '').toLowerCase();
  throw new JobFailedError(job.error ? `job ${job.id} ${state}: ${job.error}` : `job ${job.id} ended ${state}`, job);
}

export const jobResult = <T>(job: Job): T => (job.result_json ? JSON.parse(job.result_json) : {}) as T;
