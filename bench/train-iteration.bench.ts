// A real training iteration of nnU-Net's 3d_fullres Hippocampus fold on our stack — data pipeline
// (patch sampling + augmentation on the engine's device) and the step — in its child process, and
// the fraction of the iteration spent waiting for data; against the plain-PyTorch step baseline of
// the engine benchmark (no data loading) in the same run. Writes bench/results/train-iteration.json.
// Usage: node --import tsx bench/train-iteration.bench.ts [--iterations N] [--threads N] [--small]
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseArgs as parseCliArgs } from '../client/args.js';
import { planAndPreprocessCommand } from '../client/commands/plan-and-preprocess.js';
import { startFold } from '../server/training/run-fold.js';
import type { EpochEvent } from '../server/training/events.js';
import { HIPPOCAMPUS } from '../test/helpers.js';
import { hippocampusNetwork, startBaseline } from './hippocampus-network.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { iterations: { type: 'string' }, threads: { type: 'string' }, small: { type: 'boolean', default: false }, out: { type: 'string' } } });
const small = args.small === true;
const iterations = Number(args.iterations ?? (small ? 2 : 10));
const threads = Number(args.threads ?? availableParallelism());
const python = process.env.NNUNET_TEST_PYTHON ?? '/usr/bin/python3';

const home = mkdtempSync(join(tmpdir(), 'nnunet-train-bench-'));
const env = { ...process.env, NNUNET_HOME: home, OMP_NUM_THREADS: String(threads) };
try {
  cpSync(HIPPOCAMPUS, join(home, 'nnUNet_raw', 'Dataset004_Hippocampus'), { recursive: true });
  const quiet = { stdout: () => undefined, stderr: (t: string) => process.stderr.write(`${t}\n`), env };
  const ppArgs = parseCliArgs(planAndPreprocessCommand.spec, ['-d', '4', '-c', '3d_fullres', '-np', String(threads), '-npfp', String(threads)])!;
  if ((await planAndPreprocessCommand.run(ppArgs, quiet)) !== 0) throw new Error('plan_and_preprocess failed');

  // One epoch of `iterations` training iterations (+1 online validation iteration); the fold is
  // cancelled once the epoch is reported, so the final validation is not part of the timing.
  const epoch = await new Promise<EpochEvent>((resolve, reject) => {
    const run = startFold(
      { dataset: '4', configuration: '3d_fullres', fold: 0, seed: 1, numThreads: threads, env, overrides: { numEpochs: 1, numIterationsPerEpoch: iterations, numValIterationsPerEpoch: 1 } },
      {
        onEvent: (e) => {
          if (e.type === 'epoch') {
            resolve(e);
            run.cancel();
          }
        },
      },
    );
    void run.done.then((o) => (o.status === 'failed' ? reject(new Error(`training failed: ${o.message}`)) : undefined));
  });

  const net = hippocampusNetwork(false);
  const baseline = await startBaseline(python, net, { threads, warmup: 1, batch: net.batch });
  const baselineSteps: number[] = [];
  for (let i = 0; i < Math.max(2, Math.min(iterations, 6)); i++) baselineSteps.push((await baseline.request()).wall as number);
  baseline.close();
  baselineSteps.sort((a, b) => a - b);
  const pytorchStep = baselineSteps[Math.floor(baselineSteps.length / 2)];

  const perIteration = (epoch.data_wait_time + epoch.train_step_time) / iterations;
  const result = {
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
    threads,
    iterations,
    patch: net.patch,
    batch: net.batch,
    oursSecondsPerIteration: perIteration,
    oursStepSecondsPerIteration: epoch.train_step_time / iterations,
    oursDataWaitSecondsPerIteration: epoch.data_wait_time / iterations,
    dataWaitFraction: epoch.data_wait_time / (epoch.data_wait_time + epoch.train_step_time),
    pytorchStepSeconds: pytorchStep,
    ratioIterationVsPytorchStep: pytorchStep / perIteration,
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `ours: ${perIteration.toFixed(2)} s/iteration (${(result.dataWaitFraction * 100).toFixed(1)} % waiting for data, step ${result.oursStepSecondsPerIteration.toFixed(2)} s); ` +
      `PyTorch step alone: ${pytorchStep.toFixed(2)} s; PyTorch step / our whole iteration = ${result.ratioIterationVsPytorchStep.toFixed(2)}`,
  );
  const out = args.out ?? join(HERE, 'results', 'train-iteration.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2));
} finally {
  rmSync(home, { recursive: true, force: true });
}
