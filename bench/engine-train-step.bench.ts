// One nnU-Net training step (forward with deep supervision, Dice+CE, backward, clip 12, SGD nesterov)
// of the real 3d_fullres Hippocampus PlainConvUNet on our libtorch binding, against the same step in
// plain PyTorch (bench/baselines/pytorch_train_step.py, a child process kept warm), steps alternating
// one by one so the load of a shared machine hits both sides alike. Prints per-phase medians and the
// throughput ratio ours/PyTorch (target ≥ 0.9); writes bench/results/engine-train-step.json.
// Usage: node --import tsx bench/engine-train-step.bench.ts [--threads N] [--iterations N] [--warmup N] [--small] [--out FILE]
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clipGradNorm, getNumThreads, manualSeed, randint, randn, setNumThreads, SGD, tidy, type Tensor } from '../server/engine/torch.js';
import { buildNetwork } from '../server/engine/networks/index.js';
import { DeepSupervisionWrapper, DiceCELoss, deepSupervisionScales, deepSupervisionWeights } from '../server/engine/loss/index.js';
import { hippocampusNetwork, startBaseline } from './hippocampus-network.js';

const HERE = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string' },
    iterations: { type: 'string' },
    warmup: { type: 'string' },
    small: { type: 'boolean', default: false },
    out: { type: 'string' },
    python: { type: 'string' },
  },
});
const small = args.small === true;
const threads = Number(args.threads ?? availableParallelism());
const iterations = Number(args.iterations ?? (small ? 1 : 8));
const warmup = Number(args.warmup ?? 1);
const python = args.python ?? process.env.NNUNET_TEST_PYTHON ?? '/usr/bin/python3';

// The real 3d_fullres Hippocampus network (see hippocampus-network.ts); --small shrinks it.
const benchNet = hippocampusNetwork(small);
const { features, patch, batch, inputChannels, numClasses, architecture, configuration } = benchNet;
const kw = configuration.architecture.arch_kwargs;

/** One measured step: wall seconds, CPU seconds of every thread of the process, seconds per phase. */
interface StepRecord {
  wall: number;
  cpu: number;
  phases: Record<string, number>;
}

const PHASES = ['forward', 'loss', 'backward', 'clip', 'optimiser'] as const;

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Median wall time is the headline; on a shared machine the minimum (the least disturbed step) and
 * CPU time (what the work itself cost, whatever else ran) say more than the median alone.
 */
function summarise(steps: StepRecord[], parameters: number) {
  return {
    secondsPerStep: median(steps.map((s) => s.wall)),
    minSecondsPerStep: Math.min(...steps.map((s) => s.wall)),
    cpuSecondsPerStep: median(steps.map((s) => s.cpu)),
    phases: Object.fromEntries(PHASES.map((p) => [p, median(steps.map((s) => s.phases[p]))])),
    times: steps.map((s) => s.wall),
    cpuTimes: steps.map((s) => s.cpu),
    phaseTimes: Object.fromEntries(PHASES.map((p) => [p, steps.map((s) => s.phases[p])])),
    parameters,
  };
}

setNumThreads(threads);
manualSeed(1234);
const net = buildNetwork(architecture, inputChannels, numClasses, { deepSupervision: true, seed: 1234 }).materialize('cpu').train();
const params = net.parameterTensors();
const optimiser = new SGD(params, { lr: 0.01, momentum: 0.99, nesterov: true, weightDecay: 3e-5 });
const x = randn([batch, inputChannels, ...patch]).keep();
// Targets at every deep-supervision scale, made once (data loading is not part of the step): the
// label map subsampled by the cumulative strides, i.e. nearest neighbour as nnU-Net's transform.
const seg = randint(0, numClasses, [batch, 1, ...patch]).to('float32').keep();
const targets = deepSupervisionScales(kw.strides).map((scale) =>
  tidy(() => scale.reduce<Tensor>((t, s, axis) => t.slice(axis + 2, 0, undefined, Math.round(1 / s)), seg).contiguous()).keep(),
);
const loss = new DeepSupervisionWrapper(new DiceCELoss({ batchDice: configuration.batch_dice }), deepSupervisionWeights(targets.length));

/** One step, phase by phase; libtorch on CPU is synchronous, so wall-clock stamps are exact. */
function step(): StepRecord {
  const c0 = process.cpuUsage();
  const t = [performance.now()];
  tidy(() => {
    optimiser.zeroGrad();
    const outputs = net.forward(x) as Tensor[];
    t.push(performance.now());
    const l = loss.forward(outputs, targets);
    t.push(performance.now());
    l.backward();
    t.push(performance.now());
    clipGradNorm(params, 12);
    t.push(performance.now());
    optimiser.step();
    l.item();
  });
  // The last stamp is after tidy() released the step's tensors: that cost belongs to the step.
  t.push(performance.now());
  const c = process.cpuUsage(c0);
  const phases = Object.fromEntries(PHASES.map((p, i) => [p, (t[i + 1] - t[i]) / 1000]));
  return { wall: (t[5] - t[0]) / 1000, cpu: (c.user + c.system) / 1e6, phases };
}

console.log(`train step: PlainConvUNet features [${features}], patch [${patch}], batch ${batch}, ${numClasses} classes, ${threads} thread(s)`);
const load = [loadavg()[0]];
const baselineProcess = await startBaseline(python, benchNet, { threads, warmup, batch });
const baseline = {
  parameters: baselineProcess.ready.parameters,
  threads: baselineProcess.ready.threads,
  step: async () => (await baselineProcess.request()) as unknown as StepRecord,
  close: baselineProcess.close,
};
if (baseline.parameters !== net.numParameters()) {
  baseline.close();
  throw new Error(`not the same network: ours has ${net.numParameters()} parameters, PyTorch ${baseline.parameters}`);
}
for (let i = 0; i < warmup; i++) step();
const ourSteps: StepRecord[] = [];
const pyTorchSteps: StepRecord[] = [];
const fmt = (s: StepRecord) => `${s.wall.toFixed(2)} s (cpu ${s.cpu.toFixed(2)})`;
for (let i = 0; i < iterations; i++) {
  // Which side goes first alternates, so neither always runs right after the other's memory churn.
  if (i % 2 === 0) {
    ourSteps.push(step());
    pyTorchSteps.push(await baseline.step());
  } else {
    pyTorchSteps.push(await baseline.step());
    ourSteps.push(step());
  }
  load.push(loadavg()[0]);
  console.log(`  step ${i + 1}/${iterations}: ours ${fmt(ourSteps[i])}, PyTorch ${fmt(pyTorchSteps[i])}`);
}
baseline.close();

const ours = summarise(ourSteps, net.numParameters());
const pytorch = summarise(pyTorchSteps, baseline.parameters);
const ratio = pytorch.secondsPerStep / ours.secondsPerStep;
const ratioPaired = median(ourSteps.map((s, i) => pyTorchSteps[i].wall / s.wall));
const ratioMin = pytorch.minSecondsPerStep / ours.minSecondsPerStep;
const ratioCpu = pytorch.cpuSecondsPerStep / ours.cpuSecondsPerStep;

for (const p of PHASES) console.log(`  ${p.padEnd(10)} ours ${ours.phases[p].toFixed(3)} s   PyTorch ${pytorch.phases[p].toFixed(3)} s`);
console.log(`  step       ours ${ours.secondsPerStep.toFixed(3)} s   PyTorch ${pytorch.secondsPerStep.toFixed(3)} s (medians)`);
console.log(`  step min   ours ${ours.minSecondsPerStep.toFixed(3)} s   PyTorch ${pytorch.minSecondsPerStep.toFixed(3)} s`);
console.log(`  step CPU   ours ${ours.cpuSecondsPerStep.toFixed(3)} s   PyTorch ${pytorch.cpuSecondsPerStep.toFixed(3)} s (medians, all threads)`);
console.log(
  `  throughput ratio ours/PyTorch ${ratio.toFixed(3)} (target >= 0.9); paired ${ratioPaired.toFixed(3)}, by minimum ${ratioMin.toFixed(3)}, by CPU time ${ratioCpu.toFixed(3)}`,
);

const out = {
  benchmark: 'engine/train-step',
  command: `node --import tsx bench/engine-train-step.bench.ts ${process.argv.slice(2).join(' ')}`.trim(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, node: process.version, loadAverage1m: load },
  network: { class: 'PlainConvUNet', featuresPerStage: features, kernelSizes: kw.kernel_sizes, strides: kw.strides, inputChannels, numClasses, parameters: ours.parameters },
  patch,
  batch,
  threads: { ours: getNumThreads(), pytorch: baseline.threads },
  iterations,
  warmup,
  ours,
  pytorch,
  ratio,
  ratioPaired,
  ratioByMinimum: ratioMin,
  ratioByCpuTime: ratioCpu,
  ratioMeaning:
    'PyTorch seconds/step divided by ours (medians of wall time): throughput of our engine relative to PyTorch, 1 = equal, target >= 0.9; ' +
    'ratioPaired is the median of the per-step ratios (each pair ran back to back), ratioByMinimum compares the fastest steps, ' +
    'ratioByCpuTime the CPU seconds of all threads (the last three are less sensitive to other load on the machine)',
};
const file = args.out ?? join(HERE, 'results', small ? 'engine-train-step-small.json' : 'engine-train-step.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
