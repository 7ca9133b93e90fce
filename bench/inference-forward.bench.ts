// Inference forward of the real 3d_fullres Hippocampus PlainConvUNet (deep supervision off, patch
// 40×56×40, batch 1 and 2) in onnxruntime-node (our ONNX export), in libtorch (our binding, noGrad)
// and in plain PyTorch (bench/baselines/pytorch_train_step.py --mode forward, a child process kept
// warm), forwards alternating engine by engine with the same thread count. Reports seconds per
// forward, GFLOP/s from an analytic FLOP count and the ratios between engines; writes
// bench/results/inference-forward.json.
// Usage: node --import tsx bench/inference-forward.bench.ts [--threads N] [--iterations N] [--warmup N] [--small] [--no-pytorch] [--out FILE]
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { noGrad, setNumThreads, tensor, tidy, type Tensor } from '../server/engine/torch.js';
import { buildNetwork, resolveArchitecture } from '../server/engine/networks/index.js';
import { NormalRng } from '../server/engine/nn/init.js';
import { exportOnnx } from '../server/engine/onnx/index.js';
import { OnnxRunner } from '../server/inference/onnx-runner.js';
import type { Architecture } from '../server/planning/plans.js';
import { hippocampusNetwork, startBaseline } from './hippocampus-network.js';

const HERE = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string' },
    iterations: { type: 'string' },
    warmup: { type: 'string' },
    small: { type: 'boolean', default: false },
    'no-pytorch': { type: 'boolean', default: false },
    out: { type: 'string' },
    python: { type: 'string' },
  },
});
const small = args.small === true;
const threads = Number(args.threads ?? availableParallelism());
const iterations = Number(args.iterations ?? (small ? 1 : 6));
const warmup = Number(args.warmup ?? 1);
const withPyTorch = args['no-pytorch'] !== true;
const python = args.python ?? process.env.NNUNET_TEST_PYTHON ?? '/usr/bin/python3';

// The real 3d_fullres Hippocampus network (see hippocampus-network.ts); --small shrinks it.
const benchNet = hippocampusNetwork(small);
const { features, patch, inputChannels, numClasses, architecture } = benchNet;
const kw = benchNet.configuration.architecture.arch_kwargs;

const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);

/**
 * FLOPs of one sample's inference forward: 2·Cin·Cout·prod(k)·prod(output spatial) per conv and per
 * transposed conv (kernel = stride, so every output voxel takes one tap per input channel), the
 * full-resolution seg head only; norms, activations and concatenations are ignored.
 */
function forwardFlops(a: Architecture, inChannels: number, classes: number, size: readonly number[]): number {
  const r = resolveArchitecture(a);
  let flops = 0;
  let c = inChannels;
  let spatial = [...size];
  const skips: { channels: number; spatial: number[] }[] = [];
  for (let s = 0; s < r.nStages; s++) {
    for (let i = 0; i < r.perStage[s]; i++) {
      const stride = i === 0 ? r.strides[s] : r.strides[s].map(() => 1);
      const k = r.kernelSizes[s];
      // padding (k-1)/2: out = floor((in + 2p - k) / stride) + 1
      spatial = spatial.map((n, d) => Math.floor((n + 2 * Math.floor((k[d] - 1) / 2) - k[d]) / stride[d]) + 1);
      flops += 2 * c * r.featuresPerStage[s] * prod(k) * prod(spatial);
      c = r.featuresPerStage[s];
    }
    skips.push({ channels: c, spatial });
  }
  for (let s = r.nStages - 2; s >= 0; s--) {
    const skip = skips[s];
    flops += 2 * c * skip.channels * prod(r.strides[s + 1]) * prod(skip.spatial);
    c = 2 * skip.channels;
    for (let i = 0; i < r.nConvPerStageDecoder[s]; i++) {
      flops += 2 * c * skip.channels * prod(r.kernelSizes[s]) * prod(skip.spatial);
      c = skip.channels;
    }
  }
  return flops + 2 * c * classes * prod(size);
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Timing {
  wall: number[];
  cpu: number[];
}

/** Wall and process CPU seconds of fn (CPU time covers every thread, onnxruntime's pool included). */
async function timed(fn: () => unknown): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

/** The PyTorch baseline in --serve --mode forward: warmed up once, then one forward per request. */
async function startPyTorch(batch: number): Promise<{ parameters: number; forward: () => Promise<{ wall: number; cpu: number }>; close: () => void }> {
  const p = await startBaseline(python, benchNet, { threads, warmup, batch, extraArgs: ['--mode', 'forward'] });
  return {
    parameters: p.ready.parameters,
    forward: async () => {
      const o = await p.request();
      return { wall: o.wall as number, cpu: o.cpu as number };
    },
    close: p.close,
  };
}

setNumThreads(threads);
const net = buildNetwork(architecture, inputChannels, numClasses, { deepSupervision: false, seed: 1234 });
const runner = await OnnxRunner.load(exportOnnx(net), 'bench', { intraOpThreads: threads });
net.materialize('cpu').eval();
const parameters = net.numParameters();
const flopsPerSample = forwardFlops(architecture, inputChannels, numClasses, patch);

console.log(`inference forward: PlainConvUNet features [${features}], patch [${patch}], ${threads} thread(s), ${(flopsPerSample / 1e9).toFixed(2)} GFLOP per sample`);
const load = [loadavg()[0]];
const results = [];
for (const batch of [1, 2]) {
  const shape = [batch, inputChannels, ...patch];
  const rng = new NormalRng(batch);
  const x = Float32Array.from({ length: prod(shape) }, () => rng.normal());
  // Both in-process engines are timed Float32Array in, logits Float32Array out, as the predictor uses them.
  const ort = () => runner.run(x, shape);
  const libtorch = () => tidy(() => noGrad(() => (net.predictLogits(tensor(x, shape)) as Tensor).toFloat32Array()));
  const runners: Record<string, () => Promise<{ wall: number; cpu: number }>> = { onnxruntime: () => timed(ort), libtorch: () => timed(libtorch) };
  const pyTorch = withPyTorch ? await startPyTorch(batch) : null;
  if (pyTorch) {
    if (pyTorch.parameters !== parameters) {
      pyTorch.close();
      throw new Error(`not the same network: ours has ${parameters} parameters, PyTorch ${pyTorch.parameters}`);
    }
    runners.pytorch = pyTorch.forward;
  }
  const names = Object.keys(runners);
  const timings: Record<string, Timing> = Object.fromEntries(names.map((n) => [n, { wall: [], cpu: [] }]));
  for (let i = 0; i < warmup; i++) {
    await timed(ort);
    await timed(libtorch);
  }
  for (let i = 0; i < iterations; i++) {
    // One forward per engine in turn, the order rotating, spreads the machine's other load over all.
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length];
      const t = await runners[name]();
      timings[name].wall.push(t.wall);
      timings[name].cpu.push(t.cpu);
    }
    load.push(loadavg()[0]);
  }
  pyTorch?.close();
  const flops = flopsPerSample * batch;
  const engines = Object.fromEntries(
    Object.entries(timings).map(([name, t]) => {
      const s = median(t.wall);
      const best = Math.min(...t.wall);
      const e = { secondsPerForward: s, minSecondsPerForward: best, cpuSecondsPerForward: median(t.cpu), gflopsPerSecond: flops / s / 1e9, gflopsPerSecondBest: flops / best / 1e9 };
      return [name, { ...e, times: t.wall, cpuTimes: t.cpu }];
    }),
  );
  const speed = (a: string, b: string) => (engines[a] && engines[b] ? engines[b].secondsPerForward / engines[a].secondsPerForward : null);
  const ratios = {
    onnxruntimeOverLibtorch: speed('onnxruntime', 'libtorch'),
    onnxruntimeOverPytorch: speed('onnxruntime', 'pytorch'),
    libtorchOverPytorch: speed('libtorch', 'pytorch'),
  };
  console.log(`batch ${batch} (${(flops / 1e9).toFixed(2)} GFLOP):`);
  for (const [name, e] of Object.entries(engines)) {
    console.log(`  ${name.padEnd(12)} ${e.secondsPerForward.toFixed(3)} s/forward (min ${e.minSecondsPerForward.toFixed(3)}, cpu ${e.cpuSecondsPerForward.toFixed(3)})  ${e.gflopsPerSecond.toFixed(1)} GFLOP/s (best ${e.gflopsPerSecondBest.toFixed(1)})`);
  }
  console.log(`  speed ratios: onnxruntime/libtorch ${ratios.onnxruntimeOverLibtorch?.toFixed(3)}, onnxruntime/PyTorch ${ratios.onnxruntimeOverPytorch?.toFixed(3) ?? '-'}, libtorch/PyTorch ${ratios.libtorchOverPytorch?.toFixed(3) ?? '-'}`);
  results.push({ batch, flops, engines, ratios });
}
await runner.release();
net.release();

const out = {
  benchmark: 'inference/forward',
  command: `node --import tsx bench/inference-forward.bench.ts ${process.argv.slice(2).join(' ')}`.trim(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, node: process.version, loadAverage1m: load },
  network: { class: 'PlainConvUNet', featuresPerStage: features, kernelSizes: kw.kernel_sizes, strides: kw.strides, inputChannels, numClasses, parameters, deepSupervision: false },
  patch,
  threads,
  iterations,
  warmup,
  flopsPerSample,
  flopsMeaning: '2·Cin·Cout·prod(kernel)·prod(output spatial) summed over convs, transposed convs and the full-resolution seg head; norms and activations ignored',
  ratioMeaning: 'A/B = B seconds per forward divided by A (medians): how many times faster engine A runs the same forward than engine B',
  results,
};
const file = args.out ?? join(HERE, 'results', small ? 'inference-forward-small.json' : 'inference-forward.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
