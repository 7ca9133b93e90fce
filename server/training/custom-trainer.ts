// The extension point that replaces nnU-Net's "subclass nnUNetTrainer": `-tr path/to/trainer.ts`
// names a module exporting options (merged over a built-in variant) and optionally its own network
// builder. The interface is documented in server/training/README.md; an example lives in examples/.
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Tensor } from '../engine/torch.js';
import type { OnnxExportable } from '../engine/onnx/export.js';
import type { Configuration, Plans } from '../planning/plans.js';
import { resolveTrainerOptions, type TrainerOptions } from './trainer-options.js';
import { looksLikeTrainerModule, trainerVariant, variantOptions, type VariantContext, type VariantOptions } from './variants.js';

/** What a network builder is given (nnU-Net's build_network_architecture arguments). */
export interface NetworkContext {
  plans: Plans;
  configurationName: string;
  configuration: Configuration;
  /** Image channels plus one-hot previous-stage channels for a cascade. */
  inputChannels: number;
  /** Segmentation heads (labels incl. background, or regions). */
  numClasses: number;
  deepSupervision: boolean;
  seed?: number;
}

/**
 * A network the trainer can train and export: forward returns the deep-supervision outputs (full
 * resolution first) when `deepSupervision` is on, else the logits; toOnnx writes the inference graph.
 */
export interface TrainableNetwork extends OnnxExportable {
  deepSupervision: boolean;
  forward(x: Tensor): Tensor | Tensor[];
}

export type NetworkBuilder = (ctx: NetworkContext) => TrainableNetwork;

/** The shape of a trainer module (named exports, or the same keys on a default export). */
export interface TrainerModule {
  /** Trainer name in the model folder `<name>__<Plans>__<configuration>`; default: the file name. */
  name?: string;
  /** Built-in variant the options are merged over (default nnUNetTrainer). */
  base?: string;
  options?: VariantOptions;
  buildNetwork?: NetworkBuilder;
}

/** A trainer ready to run: a built-in variant or a loaded module. */
export interface ResolvedTrainer {
  name: string;
  /** Module file for custom trainers (re-imported by inference tools that need the network). */
  modulePath: string | null;
  options: TrainerOptions;
  buildNetwork: NetworkBuilder | null;
}

export class TrainerModuleError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'TrainerModuleError';
  }
}

const TRAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function validateModule(file: string, mod: Record<string, unknown>): TrainerModule {
  const src = (typeof mod.default === 'object' && mod.default !== null ? mod.default : mod) as Record<string, unknown>;
  const out: TrainerModule = {};
  if (src.name !== undefined) {
    if (typeof src.name !== 'string' || !TRAINER_NAME.test(src.name) || src.name.includes('__')) {
      throw new TrainerModuleError(file, `'name' must be letters, digits, '_', '.', '-' without '__', got ${JSON.stringify(src.name)}`);
    }
    out.name = src.name;
  }
  if (src.base !== undefined) {
    if (typeof src.base !== 'string') throw new TrainerModuleError(file, "'base' must be a built-in trainer name");
    out.base = src.base;
  }
  if (src.options !== undefined) {
    if (typeof src.options !== 'function' && (typeof src.options !== 'object' || src.options === null)) {
      throw new TrainerModuleError(file, "'options' must be an object of trainer options or a function of {batchSize, patchSize}");
    }
    out.options = src.options as VariantOptions;
  }
  if (src.buildNetwork !== undefined) {
    if (typeof src.buildNetwork !== 'function') throw new TrainerModuleError(file, "'buildNetwork' must be a function (ctx) => network");
    out.buildNetwork = src.buildNetwork as NetworkBuilder;
  }
  if (!out.options && !out.buildNetwork && !out.base) throw new TrainerModuleError(file, "exports none of 'options', 'buildNetwork', 'base'");
  return out;
}

/** Imports and checks a trainer module. */
export async function loadTrainerModule(file: string): Promise<TrainerModule> {
  const path = resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    const hint = path.endsWith('.ts') ? ' (a .ts trainer needs the tsx loader; compile it to .js or run from the sources)' : '';
    throw new TrainerModuleError(path, `cannot import: ${(err as Error).message}${hint}`);
  }
  return validateModule(path, mod);
}

const nameFromFile = (file: string) => basename(file).replace(/\.(m?[jt]s)$/, '');

/**
 * `-tr` → options and network builder. `overrides` (command-line flags such as --num_epochs)
 * win over the variant, which wins over nnU-Net's defaults.
 */
export async function resolveTrainer(trainer: string, ctx: VariantContext, overrides: Partial<TrainerOptions> = {}): Promise<ResolvedTrainer> {
  if (!looksLikeTrainerModule(trainer)) {
    const v = trainerVariant(trainer);
    return { name: v.name, modulePath: null, options: resolveTrainerOptions(variantOptions(v.options, ctx), overrides), buildNetwork: null };
  }
  const path = resolve(trainer);
  const mod = await loadTrainerModule(path);
  const base = trainerVariant(mod.base ?? 'nnUNetTrainer');
  const name = mod.name ?? nameFromFile(path);
  if (!TRAINER_NAME.test(name) || name.includes('__')) throw new TrainerModuleError(path, `cannot derive a trainer name from the file name; export 'name'`);
  const options = resolveTrainerOptions(variantOptions(base.options, ctx), mod.options ? variantOptions(mod.options, ctx) : {}, overrides);
  return { name, modulePath: path, options, buildNetwork: mod.buildNetwork ?? null };
}
