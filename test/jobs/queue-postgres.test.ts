// Two job queues sharing one PostgreSQL store, as two replicas do (fake job kinds, a real
// database): a job is run by exactly one of them, a watcher on the other sees its events live,
// CancelJob through the other stops it where it runs, and a queue that stops renewing its lease
// (its process died) loses its training to the other, which resumes it with the resume params.
import assert from 'node:assert/strict';
import { PostgresJobStore } from '../../server/jobs/postgres-store.js';
import { JobQueue, type JobContext, type JobKindSpec } from '../../server/jobs/queue.js';
import type { JobEventRecord, JobStore } from '../../server/jobs/store.js';
import { usePostgres } from './postgres.js';

/** A kind whose jobs run until released or aborted; records which queue ran what. */
function gatedKind(resource: 'training' | 'cpu', runs: { replica: string; id: string; params: Record<string, unknown> }[], replica: string): { spec: JobKindSpec; gates: Map<string, () => void> } {
  const gates = new Map<string, () => void>();
  return {
    gates,
    spec: {
      resource,
      resumeParams: (p) => ({ ...p, continueTraining: true }),
      async run(params, ctx: JobContext) {
        runs.push({ replica, id: ctx.job.id, params });
        ctx.emit({ type: 'progress', message: `on ${replica}`, progress: 0.5 });
        await new Promise<void>((resolve, reject) => {
          gates.set(ctx.job.id, resolve);
          ctx.signal.addEventListener('abort', () => reject(new Error(`aborted: ${String(ctx.signal.reason)}`)), { once: true });
        });
        return { ranOn: replica };
      },
    },
  };
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 10_000) => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('server/jobs/queue over a shared PostgreSQL store', function () {
  this.timeout(60_000);
  const postgres = usePostgres();
  const cleanup: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function replica(url: string, name: string, runs: { replica: string; id: string; params: Record<string, unknown> }[], leaseMs = 60_000): Promise<{ queue: JobQueue; store: JobStore; gates: Map<string, () => void> }> {
    const store = await PostgresJobStore.open(url);
    const kind = gatedKind('training', runs, name);
    const queue = new JobQueue(store, { train: kind.spec }, { replicaId: name, leaseMs });
    await queue.recover();
    cleanup.push(async () => {
      await queue.close();
      await store.close();
    });
    return { queue, store, gates: kind.gates };
  }

  it('runs a job on exactly one replica; the other watches it live and can cancel it', async () => {
    const url = await postgres().createDatabase();
    const runs: { replica: string; id: string; params: Record<string, unknown> }[] = [];
    const a = await replica(url, 'a', runs);
    const b = await replica(url, 'b', runs);
    const jobs = [await a.queue.submit('train', { n: 1 }), await b.queue.submit('train', { n: 2 })];
    await until(() => runs.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(runs.length, 2, 'each job started once');
    assert.deepEqual(new Set(runs.map((r) => r.id)), new Set(jobs.map((j) => j.id)));
    assert.deepEqual(runs.map((r) => r.replica).sort(), ['a', 'b'], 'one training slot each: the second job went to the other replica');

    // Watchers on both replicas of the job running on a.
    const onA = runs.find((r) => r.replica === 'a')!.id;
    const collect = async (q: JobQueue) => {
      const out: JobEventRecord[] = [];
      for await (const e of q.watch(onA)) out.push(e);
      return out;
    };
    const watchA = collect(a.queue);
    const watchB = collect(b.queue);
    await until(async () => (await b.queue.get(onA))!.message === 'on a');
    a.gates.get(onA)!();
    const [ea, eb] = await Promise.all([watchA, watchB]);
    assert.deepEqual(eb, ea);
    assert.deepEqual(eb.map((e) => [e.type, e.state]), [['state', 'QUEUED'], ['state', 'RUNNING'], ['progress', 'RUNNING'], ['state', 'SUCCEEDED']]);
    assert.deepEqual((await b.queue.get(onA))!.result, { ranOn: 'a' });

    // CancelJob through a stops the job running on b.
    const onB = runs.find((r) => r.replica === 'b')!.id;
    const watchCancel = (async () => {
      const out: JobEventRecord[] = [];
      for await (const e of b.queue.watch(onB)) out.push(e);
      return out;
    })();
    assert.equal((await a.queue.cancel(onB)).state, 'CANCELLED');
    const cancelled = await watchCancel;
    assert.equal(cancelled[cancelled.length - 1].state, 'CANCELLED');
    // b aborted its run (the gate's abort rejected): the slot frees and a new job runs on b or a.
    const third = await a.queue.submit('train', { n: 3 });
    await until(() => runs.some((r) => r.id === third.id));
    assert.equal((await a.queue.get(onB))!.state, 'CANCELLED', 'the aborted run did not overwrite CANCELLED');
  });

  it('a replica that stops renewing its lease loses its training to another, which resumes it', async () => {
    const url = await postgres().createDatabase();
    const runs: { replica: string; id: string; params: Record<string, unknown> }[] = [];
    const dying = await replica(url, 'dying', runs, 600);
    const job = await dying.queue.submit('train', { fold: '0' });
    await until(() => runs.length === 1);
    // The process "dies": its database connections go, nothing is written back.
    await dying.store.close();
    const survivor = await replica(url, 'survivor', runs, 600);
    await until(() => runs.length === 2, 15_000);
    assert.deepEqual(runs[1], { replica: 'survivor', id: job.id, params: { fold: '0', continueTraining: true } });
    const events = (await survivor.store.eventsAfter(job.id, 0)).map((e) => [e.state, e.message]);
    assert.ok(
      events.some(([state, message]) => state === 'QUEUED' && /stopped renewing its lease/.test(message)),
      JSON.stringify(events),
    );
    survivor.gates.get(job.id)!();
    await until(async () => (await survivor.queue.get(job.id))!.state === 'SUCCEEDED');
    assert.deepEqual((await survivor.queue.get(job.id))!.result, { ranOn: 'survivor' });
  });
});
