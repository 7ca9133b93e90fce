// Load test of InferenceService.Predict: N concurrent client streams against one server process
// with the small nnU-Net fixture model (Dataset104_HippoDev, fold 0, mirroring on as nnU-Net's
// default), each predicting a real Hippocampus case streamed in and out through the SDK.
// Reports p50/p95 latency, throughput and the server's peak RSS; then a burst past the configured
// admission limit, which must be answered with RESOURCE_EXHAUSTED (never by running out of memory).
// Usage: node --import tsx bench/load-predict.bench.ts [--concurrency 4] [--requests 24]
//        [--max-concurrent 2] [--burst 12] [--append]   (--append adds the run to bench/RESULTS.md)
import { execSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient } from '../client/sdk/index.js';
import { REPO_ROOT, tempDir } from '../test/helpers.js';
import { MODEL_ZIP, startServerProcess } from '../test/server/server-process.js';
import { flag, FIXTURE_MODEL as MODEL, LOAD_CASES as CASES, percentile } from './load-common.js';

const concurrency = flag('concurrency', 4);
const requests = flag('requests', 24);
const maxConcurrent = flag('max-concurrent', 2);
const burst = flag('burst', 12);
// Room for every steady-state client in the queue, none for the burst's extra calls.
const maxQueued = Math.max(0, concurrency - maxConcurrent);


/** Peak resident set of a process (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  const tmp = tempDir('nnunet-load-');
  mkdirSync(join(tmp.dir, 'out'));
  const server = await startServerProcess({
    NNUNET_HOME: tmp.dir,
    NNUNET_MAX_CONCURRENT_PREDICTIONS: String(maxConcurrent),
    NNUNET_MAX_QUEUED_PREDICTIONS: String(maxQueued),
  });
  const client = new NnunetClient({ address: server.address });
  try {
    await client.installModel(MODEL_ZIP);
    // Warm-up: loads the model into the server's cache, so latencies measure predictions.
    await client.predictFile([CASES[0]], join(tmp.dir, 'out', 'warmup.nii.gz'), { model: MODEL });
    const baseRss = peakRssMiB(server.child.pid!);

    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        // One client (one HTTP/2 connection) per worker, as separate PACS bridges would have.
        const own = new NnunetClient({ address: server.address });
        try {
          while (next < requests) {
            const i = next++;
            const start = performance.now();
            await own.predictFile([CASES[i % CASES.length]], join(tmp.dir, 'out', `w${worker}_${i}.nii.gz`), { model: MODEL });
            latencies.push((performance.now() - start) / 1000);
          }
        } finally {
          own.close();
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);

    // Burst: more simultaneous calls than running + queued places.
    const codes: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: burst }, async (_, i) => {
        const own = new NnunetClient({ address: server.address });
        try {
          await own.predictFile([CASES[i % CASES.length]], join(tmp.dir, 'out', `burst_${i}.nii.gz`), { model: MODEL });
          codes.OK = (codes.OK ?? 0) + 1;
        } catch (err) {
          const name = grpc.status[(err as grpc.ServiceError).code] ?? String(err);
          codes[name] = (codes[name] ?? 0) + 1;
        } finally {
          own.close();
        }
      }),
    );
    const peakRss = peakRssMiB(server.child.pid!);
    const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    const rejected = Number(/nnunet_predictions_rejected_total (\d+)/.exec(metrics)?.[1] ?? 0);

    const result = {
      concurrency,
      requests,
      maxConcurrentPredictions: maxConcurrent,
      maxQueuedPredictions: maxQueued,
      p50Seconds: percentile(latencies, 50),
      p95Seconds: percentile(latencies, 95),
      maxSeconds: latencies.at(-1),
      throughputPerSecond: requests / wall,
      wallSeconds: wall,
      serverRssAfterWarmupMiB: baseRss,
      serverPeakRssMiB: peakRss,
      burst,
      burstCodes: codes,
      rejectedCounter: rejected,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    };
    console.log(JSON.stringify(result, null, 2));
    if (!codes.RESOURCE_EXHAUSTED) throw new Error(`the burst of ${burst} saw no RESOURCE_EXHAUSTED (${JSON.stringify(codes)})`);
    if (Object.keys(codes).some((c) => c !== 'OK' && c !== 'RESOURCE_EXHAUSTED')) throw new Error(`unexpected codes in the burst: ${JSON.stringify(codes)}`);
    mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(REPO_ROOT, 'bench', 'results', 'load-predict.json'), JSON.stringify(result, null, 2) + '\n');
    if (process.argv.includes('--append')) appendFileSync(join(REPO_ROOT, 'bench', 'RESULTS.md'), report(result));
  } finally {
    client.close();
    await server.stop();
    tmp.cleanup();
  }
}

function report(r: Record<string, unknown> & { machine: { cpus: number; model?: string; node: string } }): string {
  const f = (x: unknown, d = 2) => Number(x).toFixed(d);
  const load = execSync('cat /proc/loadavg').toString().split(' ').slice(0, 3).join(' ');
  return `
## Predict under load (\`bench/load-predict.bench.ts\`)

Command: \`node --import tsx bench/load-predict.bench.ts --concurrency ${r.concurrency} --requests ${r.requests} --max-concurrent ${r.maxConcurrentPredictions} --burst ${r.burst} --append\`
Machine: ${r.machine.cpus} cores (${r.machine.model}), Node ${r.machine.node}; load average after the run ${load}.
Model: nnU-Net v2 fixture Dataset104_HippoDev 3d_fullres fold 0 (onnxruntime CPU), mirroring on; inputs
hippocampus_001/003/004 (≈35×51×35 voxels), streamed in and out through the SDK over loopback, one
connection per client; server limits NNUNET_MAX_CONCURRENT_PREDICTIONS=${r.maxConcurrentPredictions}, NNUNET_MAX_QUEUED_PREDICTIONS=${r.maxQueuedPredictions}.

| clients | requests | p50 | p95 | max | throughput | server RSS after warm-up → peak |
|---|---|---|---|---|---|---|
| ${r.concurrency} | ${r.requests} | ${f(r.p50Seconds)} s | ${f(r.p95Seconds)} s | ${f(r.maxSeconds)} s | ${f(r.throughputPerSecond)} cases/s | ${f(r.serverRssAfterWarmupMiB, 0)} → ${f(r.serverPeakRssMiB, 0)} MiB |

Burst of ${r.burst} simultaneous calls past the limit: ${JSON.stringify(r.burstCodes)} (\`nnunet_predictions_rejected_total\` ${r.rejectedCounter}).
`;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
