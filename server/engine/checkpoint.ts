// Training checkpoints as a pair: `<name>.safetensors` (network weights, plus SGD momentum buffers
// under `optimizer.momentum_buffer.<param>`) and `<name>.json` (the trainer state nnU-Net v2 keeps
// in checkpoint_*.pth, REFERENCE §6.4, under the same key names, plus the weights' sha256). Departs
// from nnU-Net: no pickle, no full plans/dataset.json copy (those sit beside the fold), and a
// half-finished save is detected by the hash instead of being loaded.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { temporarySibling } from '../io/atomic.js';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../io/safetensors.js';
import { tensor as makeTensor, type Device, type SGD, type Tensor } from './torch.js';

/** The newest format this code writes and reads. */
export const CHECKPOINT_FORMAT_VERSION = 1;
export const MOMENTUM_PREFIX = 'optimizer.momentum_buffer.';

/** A float32 tensor as plain data (row-major), independent of libtorch. */
export interface ArrayTensor {
  shape: number[];
  data: Float32Array;
}
export type WeightMap = Map<string, ArrayTensor> | Record<string, ArrayTensor>;

/** SGD's param_group entries that a resumed run needs (torch's names). */
export interface OptimizerHyperParameters {
  lr: number;
  momentum: number;
  dampening: number;
  weight_decay: number;
  nesterov: boolean;
  initial_lr: number;
}

export interface OptimizerState {
  hyperParameters: OptimizerHyperParameters;
  /** By parameter name; parameters without a buffer yet (never stepped) are absent. */
  momentumBuffers: WeightMap;
}

/** nnU-Net's per-epoch logger lists (nnunet_logger.py), one value per finished epoch. */
export interface TrainingLogLists {
  mean_fg_dice: number[];
  ema_fg_dice: number[];
  dice_per_class_or_region: number[][];
  train_losses: number[];
  val_losses: number[];
  lrs: number[];
  epoch_start_timestamps: number[];
  epoch_end_timestamps: number[];
}

export const LOG_LIST_KEYS = [
  'mean_fg_dice',
  'ema_fg_dice',
  'dice_per_class_or_region',
  'train_losses',
  'val_losses',
  'lrs',
  'epoch_start_timestamps',
  'epoch_end_timestamps',
] as const;

/** The trainer's state, under nnU-Net's checkpoint key names (snake_case, as in the file). */
export interface TrainerState {
  /** The next epoch to run (num_epochs in a final checkpoint). */
  current_epoch: number;
  logging: TrainingLogLists;
  /** Best EMA pseudo Dice so far; null before the first validation. */
  _best_ema: number | null;
  configuration: string;
  fold: number | 'all';
  plans_name: string;
  trainer_name: string;
  inference_allowed_mirroring_axes: number[];
  /** AMP GradScaler state, or null (CPU). */
  grad_scaler_state: { scale: number; growthTracker: number } | null;
}

export interface Checkpoint {
  weights: WeightMap;
  optimizerState?: OptimizerState | null;
  trainerState: TrainerState;
}

/** What loadCheckpoint returns: Maps keep the saved order. */
export interface LoadedCheckpoint {
  weights: Map<string, ArrayTensor>;
  optimizerState: (Omit<OptimizerState, 'momentumBuffers'> & { momentumBuffers: Map<string, ArrayTensor> }) | null;
  trainerState: TrainerState;
}

/** A checkpoint that is missing, malformed, inconsistent or too new; names the file. */
export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'CheckpointError';
  }
}

const entries = (m: WeightMap): [string, ArrayTensor][] => (m instanceof Map ? [...m.entries()] : Object.entries(m));

/**
 * Writes `<path>.safetensors` and `<path>.json`. Both go to temporary files (flushed to disk)
 * first; then the weights are renamed into place, then the JSON. A crash between the two
 * renames leaves new weights beside the old JSON, whose sha256 no longer matches: the loader
 * refuses the pair instead of resuming from mixed state.
 */
export async function saveCheckpoint(path: string, ckpt: Checkpoint): Promise<void> {
  const weightsFile = `${path}.safetensors`;
  const jsonFile = `${path}.json`;
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, t] of entries(ckpt.weights)) {
    if (name.startsWith(MOMENTUM_PREFIX)) throw new CheckpointError(weightsFile, `weight name ${name} uses the reserved prefix ${MOMENTUM_PREFIX}`);
    tensors[name] = toSafeTensor(name, t, weightsFile);
  }
  const opt = ckpt.optimizerState ?? null;
  if (opt) {
    for (const [name, t] of entries(opt.momentumBuffers)) tensors[MOMENTUM_PREFIX + name] = toSafeTensor(MOMENTUM_PREFIX + name, t, weightsFile);
  }
  const bytes = encodeSafetensors(tensors, { format: 'pt', nnunet_server_checkpoint: String(CHECKPOINT_FORMAT_VERSION) });
  validateTrainerState(ckpt.trainerState, jsonFile);
  const document = {
    format_version: CHECKPOINT_FORMAT_VERSION,
    weights_file: basename(weightsFile),
    weights_sha256: createHash('sha256').update(bytes).digest('hex'),
    weights_bytes: bytes.length,
    optimizer: opt ? { ...opt.hyperParameters } : null,
    ...ckpt.trainerState,
    logging: encodeLogging(ckpt.trainerState.logging),
    _best_ema: encodeNumber(ckpt.trainerState._best_ema),
  };
  const json = JSON.stringify(document, null, 2) + '\n';

  await mkdir(dirname(weightsFile), { recursive: true });
  const tmpWeights = temporarySibling(weightsFile);
  const tmpJson = temporarySibling(jsonFile);
  try {
    await writeDurably(tmpWeights, bytes);
    await writeDurably(tmpJson, json);
    await rename(tmpWeights, weightsFile);
    await rename(tmpJson, jsonFile);
  } catch (err) {
    await Promise.all([rm(tmpWeights, { force: true }), rm(tmpJson, { force: true })]);
    throw err;
  }
  await syncDirectory(dirname(weightsFile));
}

/** Reads and verifies a pair written by saveCheckpoint. */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const jsonFile = `${path}.json`;
  const weightsFile = `${path}.safetensors`;
  const doc = parseDocument(await readOrExplain(jsonFile, 'checkpoint state'), jsonFile);
  const bytes = await readOrExplain(weightsFile, 'checkpoint weights');
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== doc.weights_sha256) {
    throw new CheckpointError(
      weightsFile,
      `sha256 ${sha} does not match ${doc.weights_sha256} recorded in ${jsonFile}: the pair is inconsistent ` +
        '(a save was interrupted, or one file was replaced); use another checkpoint',
    );
  }
  const { tensors } = decodeSafetensors(bytes, weightsFile);
  const weights = new Map<string, ArrayTensor>();
  const momentumBuffers = new Map<string, ArrayTensor>();
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== 'F32') throw new CheckpointError(weightsFile, `tensor ${name} is ${t.dtype}; checkpoints hold float32 only`);
    const arrayTensor = { shape: t.shape, data: t.data as Float32Array };
    if (name.startsWith(MOMENTUM_PREFIX)) momentumBuffers.set(name.slice(MOMENTUM_PREFIX.length), arrayTensor);
    else weights.set(name, arrayTensor);
  }
  if (doc.optimizer === null && momentumBuffers.size > 0) {
    throw new CheckpointError(jsonFile, 'momentum buffers are stored but the optimizer hyper-parameters are missing');
  }
  return {
    weights,
    optimizerState: doc.optimizer === null ? null : { hyperParameters: doc.optimizer, momentumBuffers },
    trainerState: doc.state,
  };
}

// ---- torch helpers ---------------------------------------------------------------------------

/** A copy of a tensor's values as float32 on the host (any dtype, any device; no grad). */
export function tensorToArray(t: Tensor): ArrayTensor {
  return { shape: t.shape, data: t.toFloat32Array() };
}

/** A new float32 tensor with a copy of the data, on `device` (default cpu). */
export function arrayToTensor(a: ArrayTensor, device: Device = 'cpu'): Tensor {
  return makeTensor(a.data, a.shape, { device });
}

/** The optimiser state to save: hyper-parameters and each stepped parameter's momentum buffer. */
export function sgdState(sgd: SGD, paramNames: string[], initialLr: number): OptimizerState {
  if (paramNames.length !== sgd.params.length) throw new Error(`sgdState: ${paramNames.length} names for ${sgd.params.length} parameters`);
  const momentumBuffers = new Map<string, ArrayTensor>();
  sgd.momentumBuffers.forEach((b, i) => {
    if (b) momentumBuffers.set(paramNames[i], tensorToArray(b));
  });
  const { lr, momentum, dampening, weightDecay, nesterov } = sgd;
  return { hyperParameters: { lr, momentum, dampening, weight_decay: weightDecay, nesterov, initial_lr: initialLr }, momentumBuffers };
}

/** Restores momentum buffers (by parameter name, shapes checked) and the learning rate into sgd. */
export function restoreSgd(sgd: SGD, paramNames: string[], state: { hyperParameters: OptimizerHyperParameters; momentumBuffers: WeightMap }): void {
  if (paramNames.length !== sgd.params.length) throw new Error(`restoreSgd: ${paramNames.length} names for ${sgd.params.length} parameters`);
  const saved = new Map(entries(state.momentumBuffers));
  const known = new Set(paramNames);
  for (const name of saved.keys()) if (!known.has(name)) throw new Error(`restoreSgd: momentum buffer for unknown parameter ${name}`);
  paramNames.forEach((name, i) => {
    const a = saved.get(name);
    const shape = sgd.params[i].shape;
    if (a && (a.shape.length !== shape.length || a.shape.some((d, k) => d !== shape[k]))) {
      throw new Error(`restoreSgd: momentum buffer ${name} has shape [${a.shape}], parameter has [${shape}]`);
    }
  });
  // Checked first, so a refusal never leaves half-created native tensors behind.
  const buffers = paramNames.map((name, i) => {
    const a = saved.get(name);
    if (!a) return null;
    const p = sgd.params[i];
    const t = arrayToTensor(a, p.device as Device);
    if (p.dtype === 'float32') return t;
    const converted = t.to(p.dtype);
    t.dispose();
    return converted;
  });
  sgd.loadMomentumBuffers(buffers);
  sgd.lr = state.hyperParameters.lr;
}

// ---- file helpers ----------------------------------------------------------------------------

async function writeDurably(file: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync(); // the rename must never publish data still in the page cache
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the renames durable; some filesystems refuse fsync on a directory, which is harmless.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

async function readOrExplain(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointError(file, code === 'ENOENT' ? `${what} file is missing` : `cannot read ${what}: ${(err as Error).message}`);
  }
}

function toSafeTensor(name: string, t: ArrayTensor, file: string): SafeTensor {
  if (!(t.data instanceof Float32Array)) throw new CheckpointError(file, `tensor ${name}: data must be a Float32Array`);
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) throw new CheckpointError(file, `tensor ${name}: shape [${t.shape}] needs ${numel} values, got ${t.data.length}`);
  return { dtype: 'F32', shape: [...t.shape], data: t.data };
}

// JSON has no NaN or Infinity, which the logs do hold (a class absent from validation has a NaN
// Dice; a diverged loss is infinite): they are written as the strings Python's float() reads.
type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity';
const encodeNumber = (v: number | null): JsonNumber | null =>
  v === null ? null : Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v;

function encodeLogging(log: TrainingLogLists): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of LOG_LIST_KEYS) {
    out[key] = key === 'dice_per_class_or_region' ? log[key].map((row) => row.map(encodeNumber)) : log[key].map(encodeNumber);
  }
  return out;
}

function decodeNumber(v: unknown, file: string, where: string): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new CheckpointError(file, `${where} must be a number, got ${JSON.stringify(v)}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function validateTrainerState(s: TrainerState, file: string): void {
  if (!Number.isInteger(s.current_epoch) || s.current_epoch < 0) throw new CheckpointError(file, `current_epoch must be a non-negative integer, got ${s.current_epoch}`);
  if (!(s.fold === 'all' || (Number.isInteger(s.fold) && s.fold >= 0))) throw new CheckpointError(file, `fold must be a non-negative integer or "all", got ${s.fold}`);
  for (const key of LOG_LIST_KEYS) if (!Array.isArray(s.logging?.[key])) throw new CheckpointError(file, `logging.${key} must be a list`);
}

interface Document {
  weights_sha256: string;
  optimizer: OptimizerHyperParameters | null;
  state: TrainerState;
}

function parseDocument(bytes: Buffer, file: string): Document {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CheckpointError(file, `not valid JSON (${(err as Error).message}); the file is damaged`);
  }
  const fail = (reason: string): never => {
    throw new CheckpointError(file, reason);
  };
  if (!isRecord(raw)) return fail('expected a JSON object');
  const version = raw.format_version;
  if (!Number.isInteger(version) || (version as number) < 1) fail(`format_version must be a positive integer, got ${JSON.stringify(version)}`);
  if ((version as number) > CHECKPOINT_FORMAT_VERSION) {
    fail(`checkpoint format version ${version} is newer than this server reads (up to ${CHECKPOINT_FORMAT_VERSION}); upgrade the server`);
  }
  if (typeof raw.weights_sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(raw.weights_sha256)) fail('weights_sha256 must be a sha256 hex digest');

  const num = (v: unknown, where: string): number => decodeNumber(v, file, where);
  const numList = (v: unknown, where: string): number[] => (Array.isArray(v) ? v.map((x, i) => num(x, `${where}[${i}]`)) : fail(`${where} must be a list`));
  if (!isRecord(raw.logging)) fail('logging must be an object with the 8 per-epoch lists');
  const logIn = raw.logging as Record<string, unknown>;
  const logging = {} as TrainingLogLists;
  for (const key of LOG_LIST_KEYS) {
    if (key === 'dice_per_class_or_region') {
      const rows = logIn[key];
      logging[key] = Array.isArray(rows) ? rows.map((row, i) => numList(row, `logging.${key}[${i}]`)) : fail(`logging.${key} must be a list`);
    } else {
      logging[key] = numList(logIn[key], `logging.${key}`);
    }
  }

  const str = (key: string): string => (typeof raw[key] === 'string' ? (raw[key] as string) : fail(`${key} must be a string`));
  const fold = raw.fold;
  if (!(fold === 'all' || (Number.isInteger(fold) && (fold as number) >= 0))) fail(`fold must be a non-negative integer or "all", got ${JSON.stringify(fold)}`);
  const epoch = raw.current_epoch;
  if (!Number.isInteger(epoch) || (epoch as number) < 0) fail(`current_epoch must be a non-negative integer, got ${JSON.stringify(epoch)}`);
  const axes = raw.inference_allowed_mirroring_axes;
  if (!Array.isArray(axes) || !axes.every((a) => Number.isInteger(a) && a >= 0)) fail('inference_allowed_mirroring_axes must be a list of axis indices');
  const scaler = raw.grad_scaler_state ?? null;
  if (scaler !== null && !(isRecord(scaler) && typeof scaler.scale === 'number' && typeof scaler.growthTracker === 'number')) {
    fail('grad_scaler_state must be null or {scale, growthTracker}');
  }

  let optimizer: OptimizerHyperParameters | null = null;
  if (raw.optimizer !== null && raw.optimizer !== undefined) {
    if (!isRecord(raw.optimizer)) return fail('optimizer must be an object or null');
    const o = raw.optimizer;
    if (typeof o.nesterov !== 'boolean') fail('optimizer.nesterov must be a boolean');
    optimizer = {
      lr: num(o.lr, 'optimizer.lr'),
      momentum: num(o.momentum, 'optimizer.momentum'),
      dampening: num(o.dampening, 'optimizer.dampening'),
      weight_decay: num(o.weight_decay, 'optimizer.weight_decay'),
      nesterov: o.nesterov as boolean,
      initial_lr: num(o.initial_lr, 'optimizer.initial_lr'),
    };
  }

  return {
    weights_sha256: raw.weights_sha256 as string,
    optimizer,
    state: {
      current_epoch: epoch as number,
      logging,
      _best_ema: raw._best_ema === null || raw._best_ema === undefined ? null : num(raw._best_ema, '_best_ema'),
      configuration: str('configuration'),
      fold: fold as number | 'all',
      plans_name: str('plans_name'),
      trainer_name: str('trainer_name'),
      inference_allowed_mirroring_axes: axes as number[],
      grad_scaler_state: scaler as TrainerState['grad_scaler_state'],
    },
  };
}
