// The trainer's hyper-parameters as one plain object (REFERENCE §5.1). nnU-Net sets these in
// nnUNetTrainer.__init__ and changes them by subclassing; here a variant is a partial object
// merged over the defaults, so a trainer is data that can be logged, saved and compared.

/** Which loss the trainer builds (nnU-Net's _build_loss and its loss variants, §5.5). */
export type LossKind = 'dice_ce' | 'ce' | 'dice';

/** Test-time/augmentation mirroring (nnUNetTrainerNoMirroring, nnUNetTrainer_onlyMirror01). */
export type MirroringMode = 'default' | 'none' | 'only01';

export interface TrainerOptions {
  numEpochs: number;
  numIterationsPerEpoch: number;
  numValIterationsPerEpoch: number;
  initialLr: number;
  /** Poly schedule exponent: lr = initialLr · (1 − epoch/numEpochs)^exponent. */
  lrExponent: number;
  weightDecay: number;
  momentum: number;
  nesterov: boolean;
  /** Global L2 norm the gradients are clipped to (after AMP unscaling). */
  gradClipNorm: number;
  oversampleForegroundPercent: number;
  /** Each sample forced to foreground with probability p instead of the last samples of the batch. */
  probabilisticOversampling: boolean;
  /** checkpoint_latest every this many epochs. */
  saveEvery: number;
  enableDeepSupervision: boolean;
  loss: LossKind;
  /** Soft Dice smoothing term (nnUNetTrainerDiceCELoss_noSmooth sets 0). */
  diceSmooth: number;
  mirroring: MirroringMode;
  /** Weight of the previous EMA in ema_t = a·ema_{t−1} + (1 − a)·dice_t (nnU-Net's logger uses 0.9). */
  emaAlpha: number;
}

/** nnUNetTrainer's values. */
export const DEFAULT_TRAINER_OPTIONS: Readonly<TrainerOptions> = Object.freeze({
  numEpochs: 1000,
  numIterationsPerEpoch: 250,
  numValIterationsPerEpoch: 50,
  initialLr: 1e-2,
  lrExponent: 0.9,
  weightDecay: 3e-5,
  momentum: 0.99,
  nesterov: true,
  gradClipNorm: 12,
  oversampleForegroundPercent: 0.33,
  probabilisticOversampling: false,
  saveEvery: 50,
  enableDeepSupervision: true,
  loss: 'dice_ce',
  diceSmooth: 1e-5,
  mirroring: 'default',
  emaAlpha: 0.9,
});

export class TrainerOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainerOptionsError';
  }
}

const INTEGER_KEYS = ['numEpochs', 'numIterationsPerEpoch', 'numValIterationsPerEpoch', 'saveEvery'] as const;
const NUMBER_KEYS = ['initialLr', 'lrExponent', 'weightDecay', 'momentum', 'gradClipNorm', 'oversampleForegroundPercent', 'diceSmooth', 'emaAlpha'] as const;
const BOOLEAN_KEYS = ['nesterov', 'probabilisticOversampling', 'enableDeepSupervision'] as const;
const LOSSES: LossKind[] = ['dice_ce', 'ce', 'dice'];
const MIRRORING: MirroringMode[] = ['default', 'none', 'only01'];

/**
 * Merges `layers` (earliest first) over the defaults and checks every value, so a typo in a custom
 * trainer module fails at start-up with the key named, not as a NaN loss hours later.
 */
export function resolveTrainerOptions(...layers: (Partial<TrainerOptions> | undefined)[]): TrainerOptions {
  const known = new Set(Object.keys(DEFAULT_TRAINER_OPTIONS));
  const merged: Record<string, unknown> = { ...DEFAULT_TRAINER_OPTIONS };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (!known.has(key)) throw new TrainerOptionsError(`unknown trainer option '${key}' (known: ${[...known].join(', ')})`);
      if (value !== undefined) merged[key] = value;
    }
  }
  const o = merged as unknown as TrainerOptions;
  for (const key of INTEGER_KEYS) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new TrainerOptionsError(`${key} must be a positive integer, got ${JSON.stringify(o[key])}`);
  }
  for (const key of NUMBER_KEYS) {
    if (typeof o[key] !== 'number' || !Number.isFinite(o[key]) || o[key] < 0) {
      throw new TrainerOptionsError(`${key} must be a finite non-negative number, got ${JSON.stringify(o[key])}`);
    }
  }
  for (const key of BOOLEAN_KEYS) if (typeof o[key] !== 'boolean') throw new TrainerOptionsError(`${key} must be true or false, got ${JSON.stringify(o[key])}`);
  if (o.oversampleForegroundPercent > 1) throw new TrainerOptionsError(`oversampleForegroundPercent must be in [0, 1], got ${o.oversampleForegroundPercent}`);
  if (o.emaAlpha >= 1) throw new TrainerOptionsError(`emaAlpha must be below 1, got ${o.emaAlpha}`);
  if (o.initialLr === 0) throw new TrainerOptionsError('initialLr must be positive');
  if (!LOSSES.includes(o.loss)) throw new TrainerOptionsError(`loss must be one of ${LOSSES.join(', ')}, got ${JSON.stringify(o.loss)}`);
  if (!MIRRORING.includes(o.mirroring)) throw new TrainerOptionsError(`mirroring must be one of ${MIRRORING.join(', ')}, got ${JSON.stringify(o.mirroring)}`);
  return o;
}

/**
 * nnUNetTrainer_probabilisticOversampling turns the fixed "last samples of the batch" rule into a
 * probability that keeps the same expected share: the fraction of batch positions that the fixed
 * rule forces (index ≥ round(B·(1 − p))), e.g. 0.5 for p = 0.33 and B = 2.
 */
export function effectiveOversamplingProbability(batchSize: number, percent: number): number {
  const threshold = pythonRound(batchSize * (1 - percent));
  let forced = 0;
  for (let i = 0; i < batchSize; i++) if (i >= threshold) forced++;
  return forced / batchSize;
}

/** Python 3's round(): half to even. */
export function pythonRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
