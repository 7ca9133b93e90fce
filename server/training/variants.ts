// nnU-Net's trainer class names as named option sets, so `-tr nnUNetTrainer_250epochs` and the
// other stock variants work unchanged (nnunetv2/training/nnUNetTrainer/variants/*). A variant is
// data merged over the defaults; one that depends on the configuration is a function of it.
import type { TrainerOptions } from './trainer-options.js';
import { effectiveOversamplingProbability } from './trainer-options.js';

/** What a variant may look at when it picks its options. */
export interface VariantContext {
  batchSize: number;
  patchSize: number[];
}

export type VariantOptions = Partial<TrainerOptions> | ((ctx: VariantContext) => Partial<TrainerOptions>);

export interface TrainerVariant {
  name: string;
  description: string;
  options: VariantOptions;
}

export class UnknownTrainerError extends Error {
  constructor(readonly trainer: string) {
    super(
      `trainer '${trainer}' is not supported. Supported trainers: ${supportedTrainerNames().join(', ')}. ` +
        'A custom trainer is a path to a .js/.ts module (see server/training/README.md).',
    );
    this.name = 'UnknownTrainerError';
  }
}

const EPOCH_COUNTS = [1, 5, 10, 20, 50, 100, 250, 300, 500, 750, 2000, 4000, 8000];
const epochsName = (n: number) => (n === 1 ? 'nnUNetTrainer_1epoch' : `nnUNetTrainer_${n}epochs`);

function probabilisticOversampling(percent?: number): VariantOptions {
  // The base variant keeps the expected share the fixed rule gave for this batch size; _033 and
  // _010 set the probability outright (nnUNetTrainer_probabilisticOversampling.py).
  return (ctx) => ({
    probabilisticOversampling: true,
    oversampleForegroundPercent: percent ?? effectiveOversamplingProbability(ctx.batchSize, 0.33),
  });
}

const BASE: TrainerVariant[] = [
  { name: 'nnUNetTrainer', description: "nnU-Net's default: 1000 epochs × 250 iterations, Dice + CE, deep supervision", options: {} },
  ...EPOCH_COUNTS.map((n) => ({ name: epochsName(n), description: `${n} epoch${n === 1 ? '' : 's'}`, options: { numEpochs: n } })),
  ...EPOCH_COUNTS.map((n) => ({
    name: `${epochsName(n)}_NoMirroring`,
    description: `${n} epoch${n === 1 ? '' : 's'}, no mirroring in augmentation or inference`,
    options: { numEpochs: n, mirroring: 'none' as const },
  })),
  { name: 'nnUNetTrainerNoMirroring', description: 'no mirroring in augmentation or test-time augmentation', options: { mirroring: 'none' } },
  { name: 'nnUNetTrainer_onlyMirror01', description: 'mirror only spatial axes 0 and 1 (3D) / 0 (2D)', options: { mirroring: 'only01' } },
  { name: 'nnUNetTrainerNoDeepSupervision', description: 'loss on the full-resolution output only', options: { enableDeepSupervision: false } },
  { name: 'nnUNetTrainerCELoss', description: 'cross entropy only (label datasets)', options: { loss: 'ce' } },
  { name: 'nnUNetTrainerCELoss_5epochs', description: 'cross entropy only, 5 epochs', options: { loss: 'ce', numEpochs: 5 } },
  { name: 'nnUNetTrainerDiceLoss', description: 'soft Dice only', options: { loss: 'dice' } },
  { name: 'nnUNetTrainerDiceCELoss_noSmooth', description: 'Dice + CE with Dice smoothing 0', options: { diceSmooth: 0 } },
  { name: 'nnUNetTrainer_probabilisticOversampling', description: 'foreground forced per sample with the fixed rule\'s expected share', options: probabilisticOversampling() },
  { name: 'nnUNetTrainer_probabilisticOversampling_033', description: 'foreground forced per sample with probability 0.33', options: probabilisticOversampling(0.33) },
  { name: 'nnUNetTrainer_probabilisticOversampling_010', description: 'foreground forced per sample with probability 0.1', options: probabilisticOversampling(0.1) },
];

const VARIANTS = new Map(BASE.map((v) => [v.name, v]));

export function supportedTrainerNames(): string[] {
  return [...VARIANTS.keys()];
}

export function listTrainerVariants(): TrainerVariant[] {
  return [...VARIANTS.values()];
}

export function isKnownTrainer(name: string): boolean {
  return VARIANTS.has(name);
}

/** The named variant; an unknown name is an error that lists every supported one. */
export function trainerVariant(name: string): TrainerVariant {
  const v = VARIANTS.get(name);
  if (!v) throw new UnknownTrainerError(name);
  return v;
}

/** A variant's options for one configuration. */
export function variantOptions(options: VariantOptions, ctx: VariantContext): Partial<TrainerOptions> {
  return typeof options === 'function' ? options(ctx) : options;
}

/** Whether `-tr` names a module file rather than a built-in variant. */
export function looksLikeTrainerModule(trainer: string): boolean {
  return /\.(m?[jt]s)$/.test(trainer) || trainer.includes('/') || trainer.includes('\\');
}
