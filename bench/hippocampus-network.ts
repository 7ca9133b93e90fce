// What the engine benchmarks share: the real nnU-Net 3d_fullres Hippocampus network (the fixture
// plans' configuration with features_per_stage × 4, as nnU-Net planned it; `small` shrinks it for
// smoke runs), and the warm PyTorch baseline process they alternate with, one request per line.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { getConfiguration, parsePlans, type Architecture, type Configuration } from '../server/planning/plans.js';
import { fixtureModelMember } from '../test/fixtures/nnunet-model.js';

const BASELINE = join(dirname(fileURLToPath(import.meta.url)), 'baselines', 'pytorch_train_step.py');

export interface BenchNetwork {
  configuration: Configuration;
  kernelSizes: number[][];
  strides: number[][];
  features: number[];
  patch: number[];
  batch: number;
  inputChannels: number;
  numClasses: number;
  architecture: Architecture;
}

export function hippocampusNetwork(small: boolean): BenchNetwork {
  const json = (suffix: string) => JSON.parse(new TextDecoder().decode(fixtureModelMember(suffix)));
  const configuration = getConfiguration(parsePlans(json('/plans.json')), '3d_fullres');
  const datasetJson = json('/dataset.json') as { channel_names: Record<string, string>; labels: Record<string, number> };
  const kw = configuration.architecture.arch_kwargs;
  const features = kw.features_per_stage.map((f) => (small ? f / 2 : f * 4));
  return {
    configuration,
    kernelSizes: kw.kernel_sizes,
    strides: kw.strides,
    features,
    patch: small ? [16, 16, 16] : configuration.patch_size,
    batch: configuration.batch_size,
    inputChannels: Object.keys(datasetJson.channel_names).length,
    numClasses: Object.keys(datasetJson.labels).length,
    architecture: { ...configuration.architecture, arch_kwargs: { ...kw, features_per_stage: features } },
  };
}

export interface BaselineProcess {
  /** The first line the baseline prints once warmed up (parameters, threads). */
  ready: { parameters: number; threads: number };
  /** Asks for one more measured step/forward and returns its JSON line. */
  request: () => Promise<Record<string, unknown>>;
  close: () => void;
}

/** Starts `pytorch_train_step.py --serve` for `net` with `extraArgs` (e.g. `--mode forward`). */
export async function startBaseline(python: string, net: BenchNetwork, o: { threads: number; warmup: number; batch: number; extraArgs?: string[] }): Promise<BaselineProcess> {
  const child = spawn(
    python,
    [
      BASELINE,
      '--serve',
      ...(o.extraArgs ?? []),
      ...['--threads', String(o.threads), '--warmup', String(o.warmup)],
      ...['--patch', net.patch.join(','), '--batch', String(o.batch), '--features', net.features.join(',')],
      ...['--kernels', JSON.stringify(net.kernelSizes), '--strides', JSON.stringify(net.strides)],
      ...['--in-channels', String(net.inputChannels), '--classes', String(net.numClasses)],
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`PyTorch baseline exited (${python} ${BASELINE}): ${stderr.trim() || 'no output'}`);
    return JSON.parse(r.value) as Record<string, unknown>;
  };
  const ready = (await next()) as BaselineProcess['ready'];
  return {
    ready,
    request: async () => {
      child.stdin.write('step\n');
      return next();
    },
    close: () => child.stdin.end(),
  };
}
