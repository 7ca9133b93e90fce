// -pretrained_weights (REFERENCE §5.8, load_pretrained_weights.py): every network key except the
// segmentation heads (`.seg_layers.`) must exist in the source with the same shape; those are
// copied, the heads keep their fresh initialisation. Reads nnU-Net's checkpoint_*.pth or our
// checkpoint pair. Unlike nnU-Net's first failing assert, every mismatch is reported at once.
import { existsSync } from 'node:fs';
import type { WeightSource } from '../engine/nn/module.js';
import type { Module } from '../engine/nn/module.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { readTorchCheckpoint } from '../io/torch-checkpoint.js';

const SKIP = ['.seg_layers.'];
const skipped = (key: string) => SKIP.some((s) => key.includes(s));
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

export class PretrainedWeightsError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(
      `${file}: the pretrained weights do not fit this network (${problems.length} problem(s); the segmentation heads are exempt):\n  ` +
        problems.join('\n  ') +
        '\nThe source and target plans must describe the same architecture: transfer the plans with ' +
        'move_plans_between_datasets, preprocess, pretrain, then fine-tune.',
    );
    this.name = 'PretrainedWeightsError';
  }
}

export interface PretrainedReport {
  file: string;
  format: 'nnunet-pth' | 'checkpoint';
  /** Network keys copied from the source. */
  loaded: string[];
  /** Keys left at their initialisation (the segmentation heads). */
  keptInitialised: string[];
  /** Source keys the network does not have (nnU-Net's duplicate keys, other heads). */
  ignored: string[];
}

/** The network_weights of a .pth, or the weights of our checkpoint (given as base path, .json or .safetensors). */
async function readWeights(file: string): Promise<{ weights: Map<string, WeightSource>; format: PretrainedReport['format'] }> {
  if (file.endsWith('.pth')) {
    const ck = await readTorchCheckpoint(file);
    const weights = ck instanceof Map ? ck.get('network_weights') : undefined;
    if (!(weights instanceof Map)) throw new PretrainedWeightsError(file, ["no 'network_weights' in the checkpoint (is this an nnU-Net v2 checkpoint_*.pth?)"]);
    return { weights: weights as Map<string, WeightSource>, format: 'nnunet-pth' };
  }
  const base = file.replace(/\.(safetensors|json)$/, '');
  if (!existsSync(`${base}.safetensors`)) throw new PretrainedWeightsError(file, ['not a .pth file and no checkpoint pair <name>.safetensors + <name>.json']);
  const ck = await loadCheckpoint(base);
  return { weights: ck.weights as Map<string, WeightSource>, format: 'checkpoint' };
}

/** Loads every non-head weight of `file` into `network` (before it is materialised or after). */
export async function loadPretrainedWeights(network: Module, file: string): Promise<PretrainedReport> {
  const { weights, format } = await readWeights(file);
  const own = network.namedParameters();
  const problems: string[] = [];
  for (const [key, p] of own) {
    if (skipped(key)) continue;
    const w = weights.get(key);
    if (!w) problems.push(`missing ${key} ${fmt(p.shape)}`);
    else if (w.shape.length !== p.shape.length || w.shape.some((d, i) => d !== p.shape[i])) {
      problems.push(`shape of ${key}: pretrained ${fmt(w.shape)}, this network ${fmt(p.shape)}`);
    }
  }
  if (problems.length > 0) throw new PretrainedWeightsError(file, problems);
  const ownKeys = new Set(own.map(([k]) => k));
  const selected = new Map([...weights].filter(([k]) => ownKeys.has(k) && !skipped(k)));
  const report = network.loadStateDict(selected, { strict: false });
  return {
    file,
    format,
    loaded: report.loaded,
    keptInitialised: own.map(([k]) => k).filter(skipped),
    ignored: [...weights.keys()].filter((k) => !ownKeys.has(k) || skipped(k)),
  };
}
