// Shared by the network and ONNX tests: the real nnU-Net v2 fixture checkpoint, small plans
// `architecture` blocks, random weights, onnxruntime runs and the max-abs-diff measure.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import * as ort from 'onnxruntime-node';
import { decodeTorchCheckpoint, toPlain, type TorchTensor } from '../../server/io/torch-checkpoint.js';
import { parsePlans, type Architecture, type Plans } from '../../server/planning/plans.js';
import { NormalRng } from '../../server/engine/nn/init.js';
import type { Module } from '../../server/engine/nn/module.js';
import { SHARED } from '../helpers.js';

export const MODEL_ZIP = join(SHARED, 'fixtures', 'nnunetv2_model', 'hippo_small_nnunetv2.zip');
export const OBSERVED = join(SHARED, 'fixtures', 'observed');

let cached: Map<string, unknown> | null = null;

/** The decoded checkpoint_final.pth of the fixture model (4-stage 3D PlainConvUNet, features 8..64). */
export function fixtureCheckpoint(): Map<string, unknown> {
  if (!cached) {
    const entries = unzipSync(readFileSync(MODEL_ZIP), { filter: (f) => f.name.endsWith('checkpoint_final.pth') });
    cached = decodeTorchCheckpoint(Object.values(entries)[0], 'checkpoint_final.pth') as Map<string, unknown>;
  }
  return cached;
}

export function fixtureWeights(): Map<string, TorchTensor> {
  return fixtureCheckpoint().get('network_weights') as Map<string, TorchTensor>;
}

export function fixturePlans(): Plans {
  const initArgs = fixtureCheckpoint().get('init_args') as Map<string, unknown>;
  return parsePlans(toPlain(initArgs.get('plans')));
}

export interface ArchOptions {
  className?: 'PlainConvUNet' | 'ResidualEncoderUNet';
  features: number[];
  kernels: number[][];
  strides: number[][];
  /** n_conv_per_stage (plain) or n_blocks_per_stage (ResEnc); default 2 per stage. */
  perStage?: number[];
  decoder?: number[];
  dropout?: { op: string; p: number };
}

/** A plans `architecture` block as nnU-Net's planner writes it. */
export function architecture(o: ArchOptions): Architecture {
  const n = o.features.length;
  const dims = o.kernels[0].length;
  const className = o.className ?? 'PlainConvUNet';
  return {
    network_class_name: `dynamic_network_architectures.architectures.unet.${className}`,
    arch_kwargs: {
      n_stages: n,
      features_per_stage: o.features,
      conv_op: `torch.nn.modules.conv.Conv${dims}d`,
      kernel_sizes: o.kernels,
      strides: o.strides,
      [className === 'PlainConvUNet' ? 'n_conv_per_stage' : 'n_blocks_per_stage']: o.perStage ?? new Array(n).fill(2),
      n_conv_per_stage_decoder: o.decoder ?? new Array(n - 1).fill(className === 'PlainConvUNet' ? 2 : 1),
      conv_bias: true,
      norm_op: `torch.nn.modules.instancenorm.InstanceNorm${dims}d`,
      norm_op_kwargs: { eps: 1e-5, affine: true },
      dropout_op: o.dropout ? o.dropout.op : null,
      dropout_op_kwargs: o.dropout ? { p: o.dropout.p } : null,
      nonlin: 'torch.nn.LeakyReLU',
      nonlin_kwargs: { inplace: true },
    },
    _kw_requires_import: ['conv_op', 'norm_op', 'dropout_op', 'nonlin'],
  };
}

/** Gives every parameter random values (non-trivial biases and norm affines too), reproducibly. */
export function randomizeWeights(m: Module, seed = 1, scale = 0.2): void {
  const rng = new NormalRng(seed);
  for (const p of m.parameters()) {
    const v = new Float32Array(p.numel);
    const isNormWeight = p.shape.length === 1;
    for (let i = 0; i < v.length; i++) v[i] = (isNormWeight ? 0.5 : 0) + rng.normal() * scale;
    p.setValues(v);
  }
}

export function randomInput(shape: number[], seed = 7): Float32Array {
  const rng = new NormalRng(seed);
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  return x;
}

/** Runs an exported model on one float32 input; returns the logits and their shape. */
export async function runOnnx(model: Uint8Array, x: Float32Array, shape: number[]): Promise<{ data: Float32Array; dims: number[] }> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x, shape) });
    const logits = out.logits;
    return { data: logits.data as Float32Array, dims: [...logits.dims] };
  } finally {
    await session.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
