// Two replicas as a Deployment runs them: two real server processes on loopback ports sharing one
// data root and one PostgreSQL job store (a private cluster, test/jobs/postgres.ts). A model
// installed through one is served by the other; uploads to one dataset through both end
// consistent; a training submitted to one runs on exactly one, watched through the other; a
// replica SIGKILLed mid-training has its job resumed by the other from its last checkpoint once
// the lease runs out; and a grpc-js client balancing round_robin over both sees no failed Predict
// while one replica drains on SIGTERM.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient } from '../../client/sdk/index.js';
import type { Job, JobEvent } from '../../client/sdk/types.js';
import { torchAvailable } from '../../server/engine/torch.js';
import { nnunetV1 } from '../../server/rpc/protos.js';
import { MODEL_ZIP } from '../fixtures/nnunet-model.js';
import { writeSyntheticDataset } from '../fixtures/synthetic.js';
import { HIPPOCAMPUS, tempDir } from '../helpers.js';
import { postgresUnavailable, startPostgres, type PostgresFixture } from '../jobs/postgres.js';
import { ADMIN_TOKEN, healthStatus, MODEL_FOLDER, startServerProcess, type ServerProcess } from '../server/server-process.js';

const MODEL = { dataset: '104', model_folder: MODEL_FOLDER };
const CASE = join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_001_0000.nii.gz');
const LEASE_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

describe('two replicas sharing a data root and a PostgreSQL job store', function () {
  this.timeout(180_000);
  let t: ReturnType<typeof tempDir>;
  let pgFixture: PostgresFixture | undefined;
  let env: NodeJS.ProcessEnv;
  const replicas: Record<'a' | 'b', ServerProcess | undefined> = { a: undefined, b: undefined };
  const clients: NnunetClient[] = [];
  const client = (address: string, o: Partial<ConstructorParameters<typeof NnunetClient>[0]> = {}) => {
    const c = new NnunetClient({ address, token: ADMIN_TOKEN, ...o });
    clients.push(c);
    return c;
  };
  const start = async (name: 'a' | 'b') => (replicas[name] = await startServerProcess({ ...env, NNUNET_REPLICA_ID: `replica-${name}` }));
  const md = () => {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${ADMIN_TOKEN}`);
    return m;
  };
  const raw = (service: string, address: string) => new (nnunetV1()[service] as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure()) as RawClient;
  /** Which replica logged the start of a job (each start is one claim). */
  const startsOf = (jobId: string) =>
    (['a', 'b'] as const).flatMap((n) => (replicas[n]?.logs ?? []).filter((l) => l.event === 'job_started' && l.jobId === jobId).map(() => n));

  before(async function () {
    const why = postgresUnavailable();
    if (why) {
      console.log(`      replica tests skipped: ${why}`);
      return this.skip();
    }
    t = tempDir('nnunet-replicas-');
    pgFixture = await startPostgres();
    const home = join(t.dir, 'home');
    await writeSyntheticDataset(join(home, 'nnUNet_raw'), { id: 962, name: 'ReplicaPhantom', cases: 6, shape: [4, 24, 24], labels: 1, seed: 5 });
    env = {
      NNUNET_HOME: home,
      NNUNET_DATABASE_URL: await pgFixture.createDatabase(),
      NNUNET_JOB_LEASE_MS: String(LEASE_MS),
      NNUNET_ADMIN_TOKEN: ADMIN_TOKEN,
      NNUNET_TRAIN_ITERATIONS_PER_EPOCH: '2',
      NNUNET_TRAIN_VAL_ITERATIONS_PER_EPOCH: '1',
      NNUNET_SHUTDOWN_GRACE_SECONDS: '60',
      NNUNET_HEALTH_PORT: '0',
    };
    await Promise.all([start('a'), start('b')]);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all([replicas.a?.stop(), replicas.b?.stop()]);
    pgFixture?.stop();
    t?.cleanup();
  });

  it('a model installed through one replica is served by the other', async () => {
    const installed = await client(replicas.a!.address).installModel(MODEL_ZIP);
    assert.ok(installed.some((m) => `${m.trainer}__${m.plans}__${m.configuration}` === MODEL_FOLDER));
    const b = client(replicas.b!.address);
    assert.ok((await b.listModels('104')).length > 0);
    const result = await b.predictFile([CASE], join(t.dir, 'on-b.nii.gz'), { model: MODEL, mirroring: false });
    assert.ok(result.summary.voxels > 0);
  });

  it('uploads to one dataset through both replicas end consistent', async () => {
    const source = await writeSyntheticDataset(join(t.dir, 'upload-source'), { id: 963, name: 'Uploads', cases: 8, shape: [4, 16, 16], labels: 1, seed: 9 });
    const [a, b] = [client(replicas.a!.address), client(replicas.b!.address)];
    await a.createDataset({ id: 963, name: 'Uploads', channel_names: ['T2'], labels: [{ name: 'background', values: [0] }, { name: 'lesion', values: [1] }], file_ending: '.nii.gz' });
    // Every case through alternate replicas, all at once: each upload rewrites dataset.json's numTraining.
    const ids = Array.from({ length: 8 }, (_, i) => `case_${String(i).padStart(3, '0')}`);
    await Promise.all(ids.map((id, i) => (i % 2 ? b : a).uploadCase('963', id, [join(source, 'imagesTr', `${id}_0000.nii.gz`)], join(source, 'labelsTr', `${id}.nii.gz`))));
    const seen = await b.getDataset('963');
    assert.equal(seen.num_training, 8);
    assert.deepEqual(seen.cases.map((c) => c.case_id).sort(), ids);
    const json = JSON.parse(readFileSync(join(env.NNUNET_HOME!, 'nnUNet_raw', 'Dataset963_Uploads', 'dataset.json'), 'utf8'));
    assert.equal(json.numTraining, 8);
  });

  it('a training submitted to one replica runs on exactly one, and the other streams its events', async function () {
    if (!torchAvailable()) {
      console.log('      libtorch is not available (server/native not built): training across replicas skipped');
      return this.skip();
    }
    const datasets = raw('DatasetService', replicas.b!.address);
    const training = raw('TrainingService', replicas.a!.address);
    try {
      const { job: plan } = await new Promise<{ job: Job }>((resolve, reject) =>
        datasets.PlanAndPreprocess({ dataset: '962', configurations: ['2d'], num_processes: 1 }, md(), (err: Error | null, res: { job: Job }) => (err ? reject(err) : resolve(res))),
      );
      const planned = await client(replicas.a!.address).watchJob(plan.id, () => undefined);
      assert.equal(planned?.state, 'JOB_STATE_SUCCEEDED', (await client(replicas.a!.address).getJob(plan.id)).error);
      shrinkPlans(join(env.NNUNET_HOME!, 'nnUNet_preprocessed', 'Dataset962_ReplicaPhantom', 'nnUNetPlans.json'));

      const call = training.TrainFold({ dataset: '962', configuration: '2d', fold: '0', num_epochs: 1, device: 'cpu', detach: true }, md()) as grpc.ClientReadableStream<{ event: JobEvent }>;
      const [first] = await new Promise<JobEvent[]>((resolve, reject) => {
        const got: JobEvent[] = [];
        call.on('data', (m: { event: JobEvent }) => got.push(m.event));
        call.on('end', () => resolve(got));
        call.on('error', reject);
      });
      const events: JobEvent[] = [];
      const last = await client(replicas.b!.address).watchJob(first.job_id, (e) => events.push(e));
      const job = await client(replicas.b!.address).getJob(first.job_id);
      assert.equal(last?.state, 'JOB_STATE_SUCCEEDED', `${job.error}\n${events.map((e) => e.message).join('\n')}`);
      assert.deepEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), 'every event once, in order, through the other replica');
      assert.equal(events.filter((e) => e.state === 'JOB_STATE_RUNNING' && e.type === 'JOB_EVENT_TYPE_STATE').length, 1);
      assert.equal(startsOf(first.job_id).length, 1, `started by ${JSON.stringify(startsOf(first.job_id))}`);
    } finally {
      datasets.close();
      training.close();
    }
  });

  it('a replica killed mid-training has its job resumed by the other from the last checkpoint', async function () {
    if (!torchAvailable()) return this.skip();
    const training = raw('TrainingService', replicas.a!.address);
    let id: string;
    try {
      id = await new Promise<string>((resolve, reject) => {
        const call = training.TrainFold({ dataset: '962', configuration: '2d', fold: '1', num_epochs: 1000, device: 'cpu', detach: true }, md()) as grpc.ClientReadableStream<{ event: JobEvent }>;
        call.on('data', (m: { event: JobEvent }) => resolve(m.event.job_id));
        call.on('error', reject);
      });
    } finally {
      training.close();
    }
    // Wait for a finished epoch (so a checkpoint exists), then kill whichever replica runs it.
    while (startsOf(id).length === 0) await sleep(50);
    const owner = startsOf(id)[0];
    const survivor = owner === 'a' ? 'b' : 'a';
    const watcher = client(replicas[survivor]!.address);
    const firstEpoch = new AbortController();
    await watcher
      .watchJob(id, (e) => e.type === 'JOB_EVENT_TYPE_EPOCH' && firstEpoch.abort(), { signal: firstEpoch.signal })
      .catch((err: grpc.ServiceError) => assert.equal(err.code, grpc.status.CANCELLED));
    const killed = replicas[owner]!;
    killed.child.kill('SIGKILL');
    await new Promise((r) => killed.child.once('exit', r));
    replicas[owner] = undefined;

    const events: JobEvent[] = [];
    const resumed = new AbortController();
    await watcher
      .watchJob(
        id,
        (e) => {
          events.push(e);
          const takenOver = events.some((x) => /stopped renewing its lease/.test(x.message));
          if (takenOver && e.type === 'JOB_EVENT_TYPE_LOG' && /epochs \d+\.\./.test(e.message)) resumed.abort();
        },
        { signal: resumed.signal },
      )
      .catch((err: grpc.ServiceError) => assert.equal(err.code, grpc.status.CANCELLED));
    const messages = events.map((e) => e.message).join('\n');
    assert.ok(events.some((e) => e.state === 'JOB_STATE_QUEUED' && /stopped renewing its lease/.test(e.message)), messages);
    // The survivor went on from a checkpoint (epoch 2 or later), not from the first epoch.
    const restarted = events.filter((e) => /epochs \d+\.\./.test(e.message)).pop()!;
    assert.match(restarted.message, /epochs (?:[2-9]|\d{2,})\.\.1000/, messages);
    assert.deepEqual(startsOf(id), [survivor], 'the survivor started it once (the killed replica\'s logs are gone with it)');
    assert.equal((await watcher.cancelJob(id)).state, 'JOB_STATE_CANCELLED');
    await start(owner);
  });

  it('a round_robin client over both replicas sees no failed Predict while one drains on SIGTERM', async () => {
    const [a, b] = [replicas.a!, replicas.b!];
    const balanced = client(`ipv4:127.0.0.1:${a.grpcPort},127.0.0.1:${b.grpcPort}`, {
      channelOptions: { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) },
    });
    // Warm both (each loads the model once) through the balancer; round_robin only picks among
    // connected replicas, so the first calls may all go to the first one that connected.
    const served = () => ({ a: a.logs.filter((l) => l.event === 'predicted').length, b: b.logs.filter((l) => l.event === 'predicted').length });
    const before = served();
    for (let i = 0; i < 8 && !(served().a > before.a && served().b > before.b); i++) {
      await balanced.predictFile([CASE], join(t.dir, `warm${i}.nii.gz`), { model: MODEL, mirroring: false });
    }
    assert.ok(served().a > before.a && served().b > before.b, `round robin reached both: ${JSON.stringify(served())}`);

    const exited = new Promise<number | null>((resolve) => a.child.once('exit', resolve));
    let stopped = false;
    let afterExit = 0;
    const failures: string[] = [];
    let ok = 0;
    const worker = async (w: number) => {
      for (let i = 0; !(stopped && afterExit >= 4); i++) {
        try {
          await balanced.predictFile([CASE], join(t.dir, `rr_${w}_${i}.nii.gz`), { model: MODEL, mirroring: false });
          ok++;
          if (stopped) afterExit++;
        } catch (err) {
          failures.push(`${grpc.status[(err as grpc.ServiceError).code]}: ${(err as Error).message}`);
          if (failures.length > 5) return;
        }
      }
    };
    const loop = Promise.all([worker(0), worker(1)]);
    while (ok < 2) await sleep(20);
    // A Predict held in flight on the draining replica: its input is only half sent at SIGTERM.
    const held = holdPredict(a.address, CASE);
    await held.halfSent;
    const healthAddress = `127.0.0.1:${a.logs.find((l) => l.event === 'listening')!.healthPort}`;
    assert.deepEqual([await healthStatus(healthAddress), await healthStatus(healthAddress, 'liveness')], ['SERVING', 'SERVING']);
    a.child.kill('SIGTERM');
    while ((await healthStatus(healthAddress)) !== 'NOT_SERVING') await sleep(20);
    assert.equal(await healthStatus(healthAddress, 'liveness'), 'SERVING', 'liveness stays SERVING while draining');
    const heldResult = await held.finish();
    const code = await exited;
    stopped = true;
    await loop;
    replicas.a = undefined;
    assert.equal(heldResult.code, grpc.status.OK, heldResult.details);
    assert.ok(heldResult.segmentationBytes > 0, 'the in-flight call got its segmentation');
    assert.deepEqual(failures, []);
    assert.equal(code, 0);
    assert.ok(a.logs.some((l) => l.event === 'draining'));
    assert.ok(ok >= 6, `${ok} predictions`);
    const drainAt = a.logs.findIndex((l) => l.event === 'draining');
    console.log(`      ${ok} predictions, none failed; the draining replica finished ${a.logs.slice(drainAt).filter((l) => l.event === 'predicted').length} after SIGTERM`);
  });
});

/** The planned 2d network made tiny, so an epoch of two iterations takes seconds on a busy CPU. */
function shrinkPlans(file: string): void {
  const plans = JSON.parse(readFileSync(file, 'utf8'));
  const c = plans.configurations['2d'];
  Object.assign(c, { patch_size: [16, 16], batch_size: 2 });
  Object.assign(c.architecture.arch_kwargs, { n_stages: 3, features_per_stage: [4, 8, 16], kernel_sizes: [[3, 3], [3, 3], [3, 3]], strides: [[1, 1], [2, 2], [2, 2]], n_conv_per_stage: [1, 1, 1], n_conv_per_stage_decoder: [1, 1] });
  writeFileSync(file, JSON.stringify(plans, null, 4));
}

/**
 * A Predict call straight to one replica whose input stops half way until `finish()` sends the
 * rest; resolves with the call's status and the segmentation bytes streamed back.
 */
function holdPredict(address: string, file: string): { halfSent: Promise<void>; finish(): Promise<{ code: number; details: string; segmentationBytes: number }> } {
  const inference = new (nnunetV1().InferenceService as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure()) as RawClient;
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${ADMIN_TOKEN}`);
  const call = inference.Predict(m) as grpc.ClientDuplexStream<object, { chunk?: { output: string; data: Buffer } | null }>;
  const bytes = readFileSync(file);
  const half = Math.floor(bytes.length / 2);
  let segmentationBytes = 0;
  call.on('data', (msg) => {
    if (msg.chunk?.output === 'PREDICT_OUTPUT_SEGMENTATION') segmentationBytes += msg.chunk.data.length;
  });
  const status = new Promise<{ code: number; details: string }>((resolve) => {
    call.on('status', (st: grpc.StatusObject) => resolve({ code: st.code, details: st.details }));
    call.on('error', () => undefined); // the status carries it
  });
  const header = { model: MODEL, folds: [], mirroring: false, outputs: ['PREDICT_OUTPUT_SEGMENTATION'], input_format: 'INPUT_FORMAT_NIFTI', channel_sizes_bytes: [statSync(file).size] };
  const halfSent = new Promise<void>((resolve) => {
    call.write({ header });
    call.write({ chunk: { channel: 0, data: bytes.subarray(0, half) } }, () => resolve());
  });
  return {
    halfSent,
    async finish() {
      call.write({ chunk: { channel: 0, data: bytes.subarray(half) } });
      call.end();
      const st = await status;
      inference.close();
      return { ...st, segmentationBytes };
    },
  };
}
