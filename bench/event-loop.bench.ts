// Does a large Predict stall the server's event loop? A real server process predicts one large
// synthetic volume (resampled to the model's spacing on the way in and back on the way out) while
// a separate client calls grpc.health.v1 Check every 50 ms; the health latencies show how long the
// main thread was busy. Run once with the stages in-line (NNUNET_PREPROCESS_WORKERS=0) and once
// with the worker pool, on the same machine in the same run.
// Usage: node --import tsx bench/event-loop.bench.ts [--shape 96,160,160] [--spacing 1.5] [--workers 2]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { NnunetClient } from '../client/sdk/index.js';
import { writeNifti } from '../server/io/nifti.js';
import { makePhantom } from '../test/fixtures/synthetic.js';
import { REPO_ROOT, tempDir } from '../test/helpers.js';
import { MODEL_ZIP, startServerProcess } from '../test/server/server-process.js';
import { FIXTURE_MODEL as MODEL, option, percentile } from './load-common.js';

const shape = option('shape', '96,160,160').split(',').map(Number) as [number, number, number];
const spacing = Number(option('spacing', '1.5'));
const workers = Number(option('workers', '2'));
const POLL_MS = 50;


interface Run {
  workers: number;
  checks: number;
  maxMs: number;
  p99Ms: number;
  p50Ms: number;
  predictWallS: number;
  stages: { preprocess: number; predict: number; export: number };
}

function healthClient(address: string): grpc.Client & { Check(req: object, cb: (err: grpc.ServiceError | null) => void): void } {
  const def = protoLoader.loadSync(healthProtoPath, { enums: String });
  const Health = (((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor;
  return new Health(address, grpc.credentials.createInsecure()) as unknown as ReturnType<typeof healthClient>;
}

async function measure(input: string, tmp: string, poolSize: number): Promise<Run> {
  const server = await startServerProcess({ NNUNET_HOME: join(tmp, `home-${poolSize}`), NNUNET_PREPROCESS_WORKERS: String(poolSize) });
  const client = new NnunetClient({ address: server.address });
  const health = healthClient(server.address);
  try {
    await client.installModel(MODEL_ZIP);
    // Warm-up on a small case: loads the model (and starts the pool's threads) before measuring.
    const small = join(tmp, 'small_0000.nii.gz');
    const warm = makePhantom({ shape: [32, 48, 40], seed: 1 });
    await writeNifti(small, { data: warm.images[0], shape: warm.shape, channels: 1, spacing: warm.spacing, affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] }, { datatype: 'float32' });
    await client.predictFile([small], join(tmp, `warm-${poolSize}.nii.gz`), { model: MODEL, mirroring: false });
    await new Promise<void>((resolve, reject) => health.Check({ service: '' }, (err) => (err ? reject(err) : resolve())));

    const latencies: number[] = [];
    let polling = true;
    let failures = 0;
    const inFlight = new Set<Promise<void>>();
    const timer = setInterval(() => {
      if (!polling) return;
      const start = performance.now();
      const check = new Promise<void>((resolve) =>
        health.Check({ service: '' }, (err) => {
          if (err) failures++;
          else latencies.push(performance.now() - start);
          resolve();
        }),
      );
      inFlight.add(check);
      void check.then(() => inFlight.delete(check));
    }, POLL_MS);
    const t0 = performance.now();
    const result = await client.predictFile([input], join(tmp, `big-${poolSize}.nii.gz`), { model: MODEL, mirroring: false, stepSize: 1 });
    const predictWallS = (performance.now() - t0) / 1000;
    polling = false;
    clearInterval(timer);
    await Promise.all(inFlight);
    if (failures > 0) throw new Error(`${failures} health checks failed during the Predict`);
    latencies.sort((a, b) => a - b);
    const s = result.summary as unknown as { preprocess_seconds: number; predict_seconds: number; export_seconds: number };
    return {
      workers: poolSize,
      checks: latencies.length,
      maxMs: latencies[latencies.length - 1],
      p99Ms: percentile(latencies, 99),
      p50Ms: percentile(latencies, 50),
      predictWallS,
      stages: { preprocess: s.preprocess_seconds, predict: s.predict_seconds, export: s.export_seconds },
    };
  } finally {
    health.close();
    client.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const tmp = tempDir('nnunet-event-loop-');
  try {
    const input = join(tmp.dir, 'big_0000.nii.gz');
    const phantom = makePhantom({ shape, spacing: [spacing, spacing, spacing], seed: 7 });
    await writeNifti(input, { data: phantom.images[0], shape, channels: 1, spacing: phantom.spacing, affine: [[spacing, 0, 0, 0], [0, spacing, 0, 0], [0, 0, spacing, 0], [0, 0, 0, 1]] }, { datatype: 'float32' });
    const load = loadavg()[0];
    const runs = [await measure(input, tmp.dir, 0), await measure(input, tmp.dir, workers)];
    const grid = shape.map((n) => Math.round(n * spacing));
    console.log(`input ${shape.join('×')} at ${spacing} mm → network grid ≈ ${grid.join('×')} at 1 mm; health Check every ${POLL_MS} ms during the Predict`);
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average at start ${load.toFixed(1)}`);
    console.log('| NNUNET_PREPROCESS_WORKERS | health checks | max ms | p99 ms | p50 ms | Predict wall s | preprocess s | predict s | export s |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of runs) {
      console.log(
        `| ${r.workers} | ${r.checks} | ${r.maxMs.toFixed(0)} | ${r.p99Ms.toFixed(0)} | ${r.p50Ms.toFixed(0)} | ${r.predictWallS.toFixed(1)} | ${r.stages.preprocess.toFixed(2)} | ${r.stages.predict.toFixed(2)} | ${r.stages.export.toFixed(2)} |`,
      );
    }
    mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(REPO_ROOT, 'bench', 'results', 'event-loop.json'), JSON.stringify({ shape, spacing, pollMs: POLL_MS, loadAverage: load, runs }, null, 2) + '\n');
  } finally {
    tmp.cleanup();
  }
}

await main();
