// Jobs end to end through the real server process: PlanAndPreprocess on a tiny synthetic dataset
// runs as a job, then TrainFold (2 iterations per epoch through the server's
// NNUNET_TRAIN_*ITERATIONS_PER_EPOCH settings) streams to SUCCEEDED while a second watcher that
// disconnects early does not cancel it; CancelJob on another job ends it CANCELLED. The SDK
// has no PlanAndPreprocess/TrainFold helpers yet, so those two go through a raw gRPC client.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient } from '../../client/sdk/index.js';
import type { Job, JobEvent } from '../../client/sdk/types.js';
import { torchAvailable } from '../../server/engine/torch.js';
import { nnunetV1 } from '../../server/rpc/protos.js';
import { writeSyntheticDataset } from '../fixtures/synthetic.js';
import { tempDir } from '../helpers.js';
import { ADMIN_TOKEN, READ_TOKEN, startServerProcess, type ServerProcess } from './server-process.js';

const FINAL = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'];

describe('jobs through the server process', function () {
  this.timeout(300_000);
  let t: ReturnType<typeof tempDir>;
  let server: ServerProcess;
  let serverEnv: NodeJS.ProcessEnv;
  let sdk: NnunetClient;
  let reader: NnunetClient;
  let raw: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  let training: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  const md = () => {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${ADMIN_TOKEN}`);
    return m;
  };

  before(async () => {
    t = tempDir('nnunet-jobs-e2e-');
    const home = join(t.dir, 'home');
    await writeSyntheticDataset(join(home, 'nnUNet_raw'), { id: 961, name: 'JobPhantom', cases: 6, shape: [4, 24, 24], labels: 1, seed: 3 });
    serverEnv = {
      NNUNET_HOME: home,
      NNUNET_ADMIN_TOKEN: ADMIN_TOKEN,
      NNUNET_READ_TOKEN: READ_TOKEN,
      NNUNET_TRAIN_ITERATIONS_PER_EPOCH: '2',
      NNUNET_TRAIN_VAL_ITERATIONS_PER_EPOCH: '1',
    };
    server = await startServerProcess(serverEnv);
    sdk = new NnunetClient({ address: server.address, token: ADMIN_TOKEN });
    reader = new NnunetClient({ address: server.address, token: READ_TOKEN });
    const v1 = nnunetV1();
    raw = new (v1.DatasetService as grpc.ServiceClientConstructor)(server.address, grpc.credentials.createInsecure()) as typeof raw;
    training = new (v1.TrainingService as grpc.ServiceClientConstructor)(server.address, grpc.credentials.createInsecure()) as typeof training;
  });

  after(async () => {
    sdk?.close();
    reader?.close();
    raw?.close();
    training?.close();
    await server?.stop();
    t?.cleanup();
  });

  const planAndPreprocess = (request: object, metadata = md()) =>
    new Promise<{ job: Job }>((resolve, reject) => raw.PlanAndPreprocess(request, metadata, (err: Error | null, res: { job: Job }) => (err ? reject(err) : resolve(res))));

  /** TrainFold's stream: every event until it ends (or `stopAfter` events, then the call is cancelled). */
  function trainFold(request: object, stopAfter = Infinity): Promise<JobEvent[]> {
    const call = training.TrainFold(request, md()) as grpc.ClientReadableStream<{ event: JobEvent }>;
    return new Promise((resolve, reject) => {
      const events: JobEvent[] = [];
      call.on('data', (m: { event: JobEvent }) => {
        events.push(m.event);
        if (events.length >= stopAfter) {
          call.cancel();
          resolve(events);
        }
      });
      call.on('error', (err: grpc.ServiceError) => (err.code === grpc.status.CANCELLED ? resolve(events) : reject(err)));
      call.on('end', () => resolve(events));
    });
  }

  it('PlanAndPreprocess needs an admin token and runs as a job to SUCCEEDED', async () => {
    const ro = new grpc.Metadata();
    ro.set('authorization', `Bearer ${READ_TOKEN}`);
    await assert.rejects(planAndPreprocess({ dataset: '961' }, ro), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED);
    await assert.rejects(planAndPreprocess({ dataset: 'not a dataset' }), (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT);

    const { job } = await planAndPreprocess({ dataset: '961', configurations: ['2d'], num_processes: 1 });
    assert.equal(job.kind, 'JOB_KIND_PLAN_AND_PREPROCESS');
    assert.ok(['JOB_STATE_QUEUED', 'JOB_STATE_RUNNING'].includes(job.state));
    const events: JobEvent[] = [];
    const last = await reader.watchJob(job.id, (e) => events.push(e));
    const done = await reader.getJob(job.id);
    assert.equal(last?.state, 'JOB_STATE_SUCCEEDED', `${done.error}\n${events.map((e) => e.message).join('\n')}`);
    assert.deepEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1));
    assert.equal(events[0].state, 'JOB_STATE_QUEUED');
    assert.ok(events.some((e) => e.type === 'JOB_EVENT_TYPE_LOG'));
    assert.equal(done.progress, 1);
    assert.ok(done.finish_time && done.finish_time.seconds > 0);
    assert.deepEqual(JSON.parse(done.params_json).configurations, ['2d']);
    const preprocessed = join(t.dir, 'home', 'nnUNet_preprocessed', 'Dataset961_JobPhantom');
    assert.ok(existsSync(join(preprocessed, 'nnUNetPlans.json')));
    // Smaller network than planned, so two iterations take seconds on a busy CPU.
    const plansFile = join(preprocessed, 'nnUNetPlans.json');
    const plans = JSON.parse(readFileSync(plansFile, 'utf8'));
    const c = plans.configurations['2d'];
    const kw = c.architecture.arch_kwargs;
    Object.assign(c, { patch_size: [16, 16], batch_size: 2 });
    Object.assign(kw, { n_stages: 3, features_per_stage: [4, 8, 16], kernel_sizes: [[3, 3], [3, 3], [3, 3]], strides: [[1, 1], [2, 2], [2, 2]], n_conv_per_stage: [1, 1, 1], n_conv_per_stage_decoder: [1, 1] });
    writeFileSync(plansFile, JSON.stringify(plans, null, 4));
  });

  it('TrainFold streams to SUCCEEDED; a watcher that leaves does not cancel it; CancelJob cancels another', async function () {
    if (!torchAvailable()) {
      console.log('      libtorch is not available (server/native not built): training through the server skipped');
      return this.skip();
    }
    await assert.rejects(
      trainFold({ dataset: '961', configuration: '2d', fold: '0', trainer: '/tmp/evil.js' }),
      (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT,
    );
    const streaming = trainFold({ dataset: '961', configuration: '2d', fold: '0', num_epochs: 1, device: 'cpu' });
    // The job id comes from the stream's first event; a second watcher leaves after two events.
    const jobs = await new Promise<Job[]>((resolve) => {
      const poll = setInterval(() => {
        void sdk.listJobs({ kind: 'JOB_KIND_TRAIN_FOLD' }).then((r) => {
          if (r.jobs.length > 0) {
            clearInterval(poll);
            resolve(r.jobs);
          }
        });
      }, 100);
    });
    const trainId = jobs[0].id;
    const leaving = new AbortController();
    let seen = 0;
    await reader.watchJob(trainId, () => ++seen >= 2 && leaving.abort(), { signal: leaving.signal }).catch((err: grpc.ServiceError) => assert.equal(err.code, grpc.status.CANCELLED));

    // Queued behind the running training (one training at a time), detached: one event back.
    const detached = await trainFold({ dataset: '961', configuration: '2d', fold: '1', num_epochs: 1000, detach: true });
    assert.equal(detached.length, 1);
    assert.equal(detached[0].state, 'JOB_STATE_QUEUED');
    const cancelled = await sdk.cancelJob(detached[0].job_id);
    assert.equal(cancelled.state, 'JOB_STATE_CANCELLED');
    await assert.rejects(sdk.cancelJob(detached[0].job_id), (err: grpc.ServiceError) => err.code === grpc.status.FAILED_PRECONDITION);
    await assert.rejects(reader.cancelJob(trainId), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED);

    const events = await streaming;
    const job = await sdk.getJob(trainId);
    const last = events[events.length - 1];
    assert.equal(last.state, 'JOB_STATE_SUCCEEDED', `${job.error}\n${events.map((e) => e.message).join('\n')}`);
    assert.equal(events[0].job_id, trainId);
    const epochs = events.filter((e) => e.type === 'JOB_EVENT_TYPE_EPOCH');
    assert.equal(epochs.length, 1);
    assert.deepEqual([epochs[0].epoch?.epoch, epochs[0].epoch?.num_epochs, epochs[0].progress], [0, 1, 1]);
    assert.ok(JSON.parse(job.result_json).outputFolder.includes('nnUNetTrainer__nnUNetPlans__2d'));

    // Replay from a sequence: only the later events, ending with the final one.
    const replay: JobEvent[] = [];
    await sdk.watchJob(trainId, (e) => replay.push(e), { afterSequence: last.sequence - 1 });
    assert.deepEqual(replay.map((e) => e.sequence), [last.sequence]);

    // A running training is cancelled too: the fold stops after its current iteration and writes
    // checkpoint_latest, so TrainFold with continue_training can go on from it.
    const third = await trainFold({ dataset: '961', configuration: '2d', fold: '2', num_epochs: 1000, detach: true });
    const thirdId = third[0].job_id;
    await reader.watchJob(thirdId, (e) => {
      if (e.type === 'JOB_EVENT_TYPE_EPOCH' && !FINAL.includes(e.state)) void sdk.cancelJob(thirdId).catch(() => undefined);
    });
    assert.equal((await sdk.getJob(thirdId)).state, 'JOB_STATE_CANCELLED');
    const latest = join(t.dir, 'home', 'nnUNet_results', 'Dataset961_JobPhantom', 'nnUNetTrainer__nnUNetPlans__2d', 'fold_2', 'checkpoint_latest.json');
    for (let waited = 0; !existsSync(latest) && waited < 60_000; waited += 250) await new Promise((r) => setTimeout(r, 250));
    assert.ok(existsSync(latest), 'a cancelled training writes checkpoint_latest');
    const listed = await reader.listJobs({ kind: 'JOB_KIND_TRAIN_FOLD', page_size: 2 });
    assert.deepEqual(listed.jobs.map((j) => j.id), [thirdId, detached[0].job_id]);
    assert.notEqual(listed.next_page_token, '');
    const rest = await reader.listJobs({ kind: 'JOB_KIND_TRAIN_FOLD', page_size: 2, page_token: listed.next_page_token });
    assert.deepEqual([rest.jobs.map((j) => j.id), rest.next_page_token], [[trainId], '']);

    // FindBestConfiguration is a job too; with one of five folds trained, cross-validation lacks
    // predictions for most cases and the job FAILS with the stage's own message.
    const { job: best } = await new Promise<{ job: Job }>((resolve, reject) =>
      training.FindBestConfiguration({ dataset: '961', configurations: ['2d'], folds: ['0'], disable_ensembling: true }, md(), (err: Error | null, res: { job: Job }) =>
        err ? reject(err) : resolve(res),
      ),
    );
    assert.equal(best.kind, 'JOB_KIND_FIND_BEST_CONFIGURATION');
    await reader.watchJob(best.id, () => undefined);
    const bestDone = await reader.getJob(best.id);
    assert.equal(bestDone.state, 'JOB_STATE_FAILED');
    assert.match(bestDone.error, /reference case\(s\) have no prediction/);
  });

  it('a training left RUNNING by a killed server resumes (continue_training) when the server starts again', async function () {
    if (!torchAvailable()) return this.skip();
    const [queued] = await trainFold({ dataset: '961', configuration: '2d', fold: '3', num_epochs: 1000, detach: true });
    const id = queued.job_id;
    const firstEpoch = new AbortController();
    await reader
      .watchJob(id, (e) => e.type === 'JOB_EVENT_TYPE_EPOCH' && firstEpoch.abort(), { signal: firstEpoch.signal })
      .catch((err: grpc.ServiceError) => assert.equal(err.code, grpc.status.CANCELLED));
    // A crash: no drain, the store still says RUNNING. The orphaned fold stops on its own (IPC disconnect).
    server.child.kill('SIGKILL');
    await new Promise((r) => server.child.once('exit', r));
    for (const c of [sdk, reader, training, raw]) c.close();
    await new Promise((r) => setTimeout(r, 2000));

    server = await startServerProcess(serverEnv);
    sdk = new NnunetClient({ address: server.address, token: ADMIN_TOKEN });
    reader = new NnunetClient({ address: server.address, token: READ_TOKEN });
    const v1 = nnunetV1();
    raw = new (v1.DatasetService as grpc.ServiceClientConstructor)(server.address, grpc.credentials.createInsecure()) as typeof raw;
    training = new (v1.TrainingService as grpc.ServiceClientConstructor)(server.address, grpc.credentials.createInsecure()) as typeof training;

    const resumed = await sdk.getJob(id);
    assert.ok(['JOB_STATE_QUEUED', 'JOB_STATE_RUNNING'].includes(resumed.state), resumed.state);
    assert.equal(JSON.parse(resumed.params_json).continueTraining, true);
    const events: JobEvent[] = [];
    const running = new AbortController();
    await reader
      .watchJob(id, (e) => {
        events.push(e);
        // The replay has the first run's "epochs 1..1000" too; wait for the one after the restart.
        const restarted = events.some((x) => /server restarted/.test(x.message));
        if (restarted && e.type === 'JOB_EVENT_TYPE_LOG' && /epochs \d+\.\./.test(e.message)) running.abort();
      }, { signal: running.signal })
      .catch((err: grpc.ServiceError) => assert.equal(err.code, grpc.status.CANCELLED));
    assert.ok(events.some((e) => /server restarted/.test(e.message)), events.map((e) => e.message).join('\n'));
    // It went on from a checkpoint (checkpoint_best of epoch 1 at least), not from epoch 1.
    const started = events.filter((e) => /epochs \d+\.\./.test(e.message)).pop()!;
    assert.match(started.message, /epochs (?:[2-9]|\d{2,})\.\.1000/);
    assert.equal((await sdk.cancelJob(id)).state, 'JOB_STATE_CANCELLED');
  });
});
