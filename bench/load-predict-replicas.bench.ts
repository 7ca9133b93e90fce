// Predict throughput of one replica against two: the same load (N concurrent clients, each one
// grpc-js channel with round_robin over every replica's address, as clients of the headless
// Service balance) against one server process, then against two sharing one data root and one
// PostgreSQL job store (a private cluster, test/jobs/postgres.ts), as deploy/ runs them. Model:
// the nnU-Net fixture (Dataset104_HippoDev 3d_fullres fold 0, onnxruntime CPU, mirroring on);
// inputs: real Hippocampus cases streamed in and out through the SDK. Reports cases per second of
// each and the ratio two/one. Every process competes for the same cores: on a machine with few
// cores two replicas cannot be faster than one that already uses them all.
// Usage: node --import tsx bench/load-predict-replicas.bench.ts [--concurrency 4] [--requests 24]
//        [--max-concurrent 2] [--append]   (--append adds the run to bench/RESULTS.md)
import { execSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { NnunetClient } from '../client/sdk/index.js';
import { REPO_ROOT, tempDir } from '../test/helpers.js';
import { startPostgres } from '../test/jobs/postgres.js';
import { MODEL_ZIP, startServerProcess, type ServerProcess } from '../test/server/server-process.js';
import { flag, FIXTURE_MODEL as MODEL, LOAD_CASES as CASES, percentile } from './load-common.js';

const concurrency = flag('concurrency', 4);
const requests = flag('requests', 24);
const maxConcurrent = flag('max-concurrent', 2);
/** 0: every replica may use every core. N: each replica is held to N cores' worth of threads (onnxruntime threads and preprocessing workers), as a pod's CPU limit would, so that two replicas have twice the cores of one, as on two nodes. */
const coresPerReplica = flag('cores-per-replica', 0);
const ROUND_ROBIN = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };


interface Run {
  replicas: number;
  throughputPerSecond: number;
  wallSeconds: number;
  p50Seconds: number;
  p95Seconds: number;
  /** Predictions each replica logged during the measured run. */
  perReplica: number[];
}

async function measure(servers: ServerProcess[], outDir: string): Promise<Run> {
  const target = `ipv4:${servers.map((s) => s.address).join(',')}`;
  // Warm-up: every replica loads the model once (round robin reaches each in turn).
  const warm = new NnunetClient({ address: target, channelOptions: ROUND_ROBIN });
  for (let i = 0; i < 2 * servers.length; i++) await warm.predictFile([CASES[0]], join(outDir, `warm_${i}.nii.gz`), { model: MODEL });
  warm.close();
  const before = servers.map((s) => s.logs.filter((l) => l.event === 'predicted').length);
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const own = new NnunetClient({ address: target, channelOptions: ROUND_ROBIN });
      try {
        while (next < requests) {
          const i = next++;
          const start = performance.now();
          await own.predictFile([CASES[i % CASES.length]], join(outDir, `r${servers.length}_w${worker}_${i}.nii.gz`), { model: MODEL });
          latencies.push((performance.now() - start) / 1000);
        }
      } finally {
        own.close();
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    replicas: servers.length,
    throughputPerSecond: requests / wall,
    wallSeconds: wall,
    p50Seconds: percentile(latencies, 50),
    p95Seconds: percentile(latencies, 95),
    perReplica: servers.map((s, i) => s.logs.filter((l) => l.event === 'predicted').length - before[i]),
  };
}

async function main(): Promise<void> {
  const tmp = tempDir('nnunet-load-replicas-');
  mkdirSync(join(tmp.dir, 'out'));
  const pg = await startPostgres();
  const servers: ServerProcess[] = [];
  try {
    const env = {
      NNUNET_HOME: tmp.dir,
      NNUNET_DATABASE_URL: await pg.createDatabase(),
      NNUNET_MAX_CONCURRENT_PREDICTIONS: String(maxConcurrent),
      NNUNET_MAX_QUEUED_PREDICTIONS: String(concurrency),
      ...(coresPerReplica > 0 ? { NNUNET_ONNX_THREADS: String(coresPerReplica), NNUNET_PREPROCESS_WORKERS: String(coresPerReplica) } : {}),
    };
    servers.push(await startServerProcess({ ...env, NNUNET_REPLICA_ID: 'replica-1' }));
    const installer = new NnunetClient({ address: servers[0].address });
    await installer.installModel(MODEL_ZIP);
    installer.close();
    const one = await measure(servers, join(tmp.dir, 'out'));
    servers.push(await startServerProcess({ ...env, NNUNET_REPLICA_ID: 'replica-2' }));
    const two = await measure(servers, join(tmp.dir, 'out'));
    const result = {
      concurrency,
      requests,
      maxConcurrentPredictionsPerReplica: maxConcurrent,
      coresPerReplica,
      one,
      two,
      ratioTwoOverOne: two.throughputPerSecond / one.throughputPerSecond,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(REPO_ROOT, 'bench', 'results', 'load-predict-replicas.json'), JSON.stringify(result, null, 2) + '\n');
    if (process.argv.includes('--append')) appendFileSync(join(REPO_ROOT, 'bench', 'RESULTS.md'), report(result));
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    pg.stop();
    tmp.cleanup();
  }
}

function report(r: { concurrency: number; requests: number; maxConcurrentPredictionsPerReplica: number; coresPerReplica: number; one: Run; two: Run; ratioTwoOverOne: number; machine: { cpus: number; model?: string; node: string } }): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const load = execSync('cat /proc/loadavg').toString().split(' ').slice(0, 3).join(' ');
  const row = (x: Run) => `| ${x.replicas} | ${f(x.throughputPerSecond)} cases/s | ${f(x.wallSeconds, 1)} s | ${f(x.p50Seconds)} s | ${f(x.p95Seconds)} s | ${x.perReplica.join(' / ')} |`;
  return `
## Predict throughput, one replica vs two (\`bench/load-predict-replicas.bench.ts\`)

Command: \`node --import tsx bench/load-predict-replicas.bench.ts --concurrency ${r.concurrency} --requests ${r.requests} --max-concurrent ${r.maxConcurrentPredictionsPerReplica}${r.coresPerReplica ? ` --cores-per-replica ${r.coresPerReplica}` : ''} --append\`
Machine: ${r.machine.cpus} cores (${r.machine.model}), Node ${r.machine.node}, shared with other work; load average after the run ${load}.
Replicas: server processes on loopback sharing one data root and a private PostgreSQL job store, each with
NNUNET_MAX_CONCURRENT_PREDICTIONS=${r.maxConcurrentPredictionsPerReplica}${r.coresPerReplica ? `, held to ${r.coresPerReplica} core(s) each (NNUNET_ONNX_THREADS=NNUNET_PREPROCESS_WORKERS=${r.coresPerReplica}, as a pod CPU limit)` : ', each free to use every core'}; ${r.concurrency} clients, each a grpc-js channel with \`round_robin\` over every replica;
model and inputs as in the load test above (fixture 3d_fullres fold 0, mirroring on, Hippocampus cases).

| replicas | throughput | wall | p50 | p95 | predictions per replica |
|---|---|---|---|---|---|
${row(r.one)}
${row(r.two)}

Throughput two replicas / one: **${f(r.ratioTwoOverOne)}×**.
`;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
