// The job queue with fake job kinds: per-resource concurrency, events fanned out to every
// watcher with replay, a dropped watcher never cancels, CancelJob aborts, and a restart resumes
// trainings while failing other kinds with "server restarted".
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { JobInterrupted, JobQueue, JobStateError, QueueFullError, type JobContext, type JobKindSpec } from '../../server/jobs/queue.js';
import { SqliteJobStore, type JobEventRecord } from '../../server/jobs/store.js';
import { tempDir } from '../helpers.js';

/** A kind whose jobs run until released (or aborted), recording how many run at once. */
function gatedKind(resource: 'training' | 'cpu') {
  const gates = new Map<string, () => void>();
  const stats = { running: 0, maxRunning: 0, started: [] as string[] };
  const spec: JobKindSpec = {
    resource,
    async run(params, ctx: JobContext) {
      stats.running++;
      stats.maxRunning = Math.max(stats.maxRunning, stats.running);
      stats.started.push(ctx.job.id);
      try {
        ctx.emit({ type: 'progress', message: 'half way', progress: 0.5 });
        await new Promise<void>((resolve, reject) => {
          gates.set(ctx.job.id, resolve);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason === 'shutdown' ? new JobInterrupted() : new Error('aborted')), { once: true });
        });
        if (params.fail) throw new Error('it broke');
        return { echoed: params.value ?? null };
      } finally {
        stats.running--;
      }
    },
  };
  return { spec, gates, stats };
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 5000) => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
};

async function collect(queue: JobQueue, id: string, after = 0): Promise<JobEventRecord[]> {
  const out: JobEventRecord[] = [];
  for await (const e of queue.watch(id, after)) out.push(e);
  return out;
}

describe('server/jobs/queue', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('nnunet-jobqueue-')));
  afterEach(() => t.cleanup());

  it('runs jobs to SUCCEEDED with events replayed and live for every watcher', async () => {
    const cpu = gatedKind('cpu');
    const queue = new JobQueue(new SqliteJobStore(':memory:'), { fake: cpu.spec });
    const job = await queue.submit('fake', { value: 7 });
    assert.equal(job.state, 'QUEUED');
    const a = collect(queue, job.id);
    await until(() => cpu.gates.has(job.id));
    const b = collect(queue, job.id); // joins late: gets the stored history first
    cpu.gates.get(job.id)!();
    const [ea, eb] = await Promise.all([a, b]);
    assert.deepEqual(ea, eb);
    assert.deepEqual(ea.map((e) => e.sequence), [1, 2, 3, 4]);
    assert.deepEqual(ea.map((e) => [e.type, e.state]), [['state', 'QUEUED'], ['state', 'RUNNING'], ['progress', 'RUNNING'], ['state', 'SUCCEEDED']]);
    assert.equal(ea[2].progress, 0.5);
    const done = (await queue.get(job.id))!;
    assert.deepEqual([done.state, done.progress, done.result], ['SUCCEEDED', 1, { echoed: 7 }]);
    assert.ok(done.startTime! >= done.createTime && done.finishTime! >= done.startTime!);
    // After the end, a watcher from sequence 2 gets the rest and stops; one past the end gets nothing.
    assert.deepEqual((await collect(queue, job.id, 2)).map((e) => e.sequence), [3, 4]);
    assert.deepEqual(await collect(queue, job.id, 4), []);
  });

  it('keeps each resource to its limit and runs the next queued job when a slot frees', async () => {
    const train = gatedKind('training');
    const cpu = gatedKind('cpu');
    const queue = new JobQueue(new SqliteJobStore(':memory:'), { train: train.spec, cpu: cpu.spec }, { limits: { training: 1, cpu: 2 } });
    const t1 = await queue.submit('train', {});
    const t2 = await queue.submit('train', {});
    const c = [await queue.submit('cpu', {}), await queue.submit('cpu', {}), await queue.submit('cpu', {})];
    await until(() => train.stats.started.length === 1 && cpu.stats.started.length === 2);
    assert.equal((await queue.get(t2.id))!.state, 'QUEUED');
    assert.equal((await queue.get(c[2].id))!.state, 'QUEUED');
    train.gates.get(t1.id)!();
    await until(() => train.gates.has(t2.id));
    cpu.gates.get(c[0].id)!();
    await until(() => cpu.gates.has(c[2].id));
    train.gates.get(t2.id)!();
    for (const id of [c[1].id, c[2].id]) cpu.gates.get(id)!();
    await until(async () => (await Promise.all([t1, t2, ...c].map((j) => queue.get(j.id)))).every((j) => j!.state === 'SUCCEEDED'));
    assert.equal(train.stats.maxRunning, 1);
    assert.equal(cpu.stats.maxRunning, 2);
  });

  it('refuses past the queue bound with QueueFullError', async () => {
    const cpu = gatedKind('cpu');
    const queue = new JobQueue(new SqliteJobStore(':memory:'), { cpu: cpu.spec }, { maxQueued: 2 });
    await queue.submit('cpu', {});
    await queue.submit('cpu', {});
    await assert.rejects(queue.submit('cpu', {}), QueueFullError);
    await assert.rejects(queue.submit('nope', {}), /unknown job kind/);
  });

  it('a dropped watcher does not cancel; CancelJob does, queued or running', async () => {
    const cpu = gatedKind('cpu');
    const queue = new JobQueue(new SqliteJobStore(':memory:'), { cpu: cpu.spec });
    const running = await queue.submit('cpu', {});
    const queued = await queue.submit('cpu', {});
    await until(() => cpu.gates.has(running.id));
    // A watcher that leaves after the first event (the generator's return unsubscribes it).
    for await (const e of queue.watch(running.id)) {
      assert.equal(e.sequence, 1);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await queue.get(running.id))!.state, 'RUNNING');

    const cancelledQueued = await queue.cancel(queued.id);
    assert.equal(cancelledQueued.state, 'CANCELLED');
    const watching = collect(queue, running.id);
    assert.equal((await queue.cancel(running.id)).state, 'CANCELLED');
    const events = await watching;
    assert.equal(events[events.length - 1].state, 'CANCELLED');
    await assert.rejects(queue.cancel(running.id), JobStateError);
    await until(() => cpu.stats.running === 0);
    assert.equal((await queue.get(running.id))!.state, 'CANCELLED', 'the rejected run does not overwrite CANCELLED');
    assert.deepEqual(cpu.stats.started, [running.id], 'the cancelled queued job never started');
  });

  it('a failing job is FAILED with its message', async () => {
    const cpu = gatedKind('cpu');
    const queue = new JobQueue(new SqliteJobStore(':memory:'), { cpu: cpu.spec });
    const job = await queue.submit('cpu', { fail: true });
    await until(() => cpu.gates.has(job.id));
    cpu.gates.get(job.id)!();
    const events = await collect(queue, job.id);
    assert.equal(events[events.length - 1].state, 'FAILED');
    assert.equal((await queue.get(job.id))!.error, 'it broke');
  });

  it('after a crash, trainings resume with their resume params and other kinds fail "server restarted"', async () => {
    const file = join(t.dir, 'jobs.sqlite');
    const train = gatedKind('training');
    const cpu = gatedKind('cpu');
    train.spec.resumeParams = (p) => ({ ...p, continueTraining: true });
    const crashed = new JobQueue(new SqliteJobStore(file), { train: train.spec, cpu: cpu.spec });
    const tj = await crashed.submit('train', { fold: '0' });
    const cj = await crashed.submit('cpu', {});
    await until(() => train.gates.has(tj.id) && cpu.gates.has(cj.id));
    // The process "dies": the store is left as it is, with both jobs RUNNING.
    await crashed.store.close();

    const train2 = gatedKind('training');
    train2.spec.resumeParams = train.spec.resumeParams;
    const restarted = new JobQueue(new SqliteJobStore(file), { train: train2.spec, cpu: gatedKind('cpu').spec });
    await restarted.recover();
    const failed = (await restarted.get(cj.id))!;
    assert.deepEqual([failed.state, failed.error], ['FAILED', 'server restarted']);
    await until(() => train2.gates.has(tj.id));
    assert.deepEqual((await restarted.get(tj.id))!.params, { fold: '0', continueTraining: true });
    train2.gates.get(tj.id)!();
    const events = await collect(restarted, tj.id);
    assert.deepEqual(events.map((e) => e.state), ['QUEUED', 'RUNNING', 'RUNNING', 'QUEUED', 'RUNNING', 'RUNNING', 'SUCCEEDED']);
    assert.deepEqual(events.map((e) => e.sequence), [1, 2, 3, 4, 5, 6, 7]);
    await restarted.close();
    await restarted.store.close();
  });

  it('close() interrupts running jobs: resumable ones go back to QUEUED', async () => {
    const train = gatedKind('training');
    train.spec.resumeParams = (p) => ({ ...p, continueTraining: true });
    const queue = new JobQueue(new SqliteJobStore(':memory:'), { train: train.spec });
    const job = await queue.submit('train', {});
    await until(() => train.gates.has(job.id));
    await queue.close();
    const after = (await queue.get(job.id))!;
    assert.deepEqual([after.state, after.params], ['QUEUED', { continueTraining: true }]);
    await assert.rejects(queue.submit('train', {}), /shutting down/);
  });
});
