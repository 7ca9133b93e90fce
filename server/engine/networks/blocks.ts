// dynamic_network_architectures' building blocks with its exact child names, so state-dict keys
// match nnU-Net v2: ConvDropoutNormReLU (+ its `all_modules` alias), StackedConvBlocks (`convs`),
// BasicBlockD (ResNet-D: conv1, conv2, nonlin2, skip = [AvgPool] + [1×1 conv + norm]).
import type { Tensor } from '../torch.js';
import type { OnnxGraph } from '../onnx/graph.js';
import { Layer } from '../nn/module.js';
import { AvgPool, Conv, Dropout, Identity, InstanceNorm, LeakyReLU, ReLU, Sequential } from '../nn/layers.js';

/** The per-convolution choices an architecture's arch_kwargs make, resolved from Python names. */
export interface ConvSpec {
  dims: 2 | 3;
  bias: boolean;
  norm: { eps: number; affine: boolean } | null;
  dropout: { p: number; channelwise: boolean } | null;
  nonlin: { kind: 'leaky_relu'; negativeSlope: number } | { kind: 'relu' } | null;
}

export function makeNonlin(spec: ConvSpec): Layer | null {
  if (spec.nonlin === null) return null;
  return spec.nonlin.kind === 'relu' ? new ReLU() : new LeakyReLU(spec.nonlin.negativeSlope);
}

export interface BlockOptions {
  /** Overrides spec.bias (BasicBlockD's projection conv never has a bias). */
  bias?: boolean;
  /** Whether this block gets the spec's dropout and nonlinearity (BasicBlockD's conv2 gets neither). */
  dropout?: boolean;
  nonlin?: boolean;
}

/** conv → [dropout] → [norm] → [nonlin]; children conv, dropout, norm, nonlin; alias all_modules.{i}. */
export class ConvDropoutNormReLU extends Layer {
  readonly conv: Conv;
  readonly norm: InstanceNorm | null;
  readonly ops: Layer[];

  constructor(spec: ConvSpec, inChannels: number, outChannels: number, kernel: readonly number[], stride: readonly number[] | number, o: BlockOptions = {}) {
    super();
    this.conv = this.addModule('conv', new Conv(inChannels, outChannels, kernel, { stride, bias: o.bias ?? spec.bias }));
    this.ops = [this.conv];
    if (spec.dropout && o.dropout !== false) {
      this.ops.push(this.addModule('dropout', new Dropout(spec.dropout.p, spec.dropout.channelwise)));
    }
    this.norm = spec.norm ? this.addModule('norm', new InstanceNorm(outChannels, spec.norm.eps, spec.norm.affine)) : null;
    if (this.norm) this.ops.push(this.norm);
    const nonlin = o.nonlin === false ? null : makeNonlin(spec);
    if (nonlin) this.ops.push(this.addModule('nonlin', nonlin));
    this.ops.forEach((m, i) => this.addAlias(`all_modules.${i}`, m));
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.ops) y = m.forward(y);
    return y;
  }

  toOnnx(g: OnnxGraph, input: string): string {
    let y = input;
    for (const m of this.ops) y = m.toOnnx(g, y);
    return y;
  }
}

/** n ConvDropoutNormReLU, the first with `initialStride`; child `convs`. */
export class StackedConvBlocks extends Layer {
  readonly convs: Sequential;

  constructor(spec: ConvSpec, n: number, inChannels: number, outChannels: number, kernel: readonly number[], initialStride: readonly number[]) {
    super();
    const blocks: Layer[] = [];
    for (let i = 0; i < n; i++) {
      blocks.push(new ConvDropoutNormReLU(spec, i === 0 ? inChannels : outChannels, outChannels, kernel, i === 0 ? initialStride : 1));
    }
    this.convs = this.addModule('convs', new Sequential(blocks));
  }

  forward(x: Tensor): Tensor {
    return this.convs.forward(x);
  }

  toOnnx(g: OnnxGraph, input: string): string {
    return this.convs.toOnnx(g, input);
  }
}

/**
 * ResNet-D basic block: out = nonlin2(conv2(conv1(x)) + skip(x)); conv1 = conv-[dropout]-norm-nonlin
 * with the stride, conv2 = conv-norm; skip = AvgPool(stride) if strided, then a bias-free 1×1
 * conv + norm if the channels change, else identity.
 */
export class BasicBlockD extends Layer {
  readonly conv1: ConvDropoutNormReLU;
  readonly conv2: ConvDropoutNormReLU;
  readonly nonlin2: Layer | null;
  readonly skip: Layer;

  constructor(spec: ConvSpec, inChannels: number, outChannels: number, kernel: readonly number[], stride: readonly number[]) {
    super();
    this.conv1 = this.addModule('conv1', new ConvDropoutNormReLU(spec, inChannels, outChannels, kernel, stride));
    this.conv2 = this.addModule('conv2', new ConvDropoutNormReLU(spec, outChannels, outChannels, kernel, 1, { dropout: false, nonlin: false }));
    const nonlin2 = makeNonlin(spec);
    this.nonlin2 = nonlin2 ? this.addModule('nonlin2', nonlin2) : null;
    const strided = stride.some((s) => s !== 1);
    const ops: Layer[] = [];
    if (strided) ops.push(new AvgPool(stride, stride));
    if (inChannels !== outChannels) {
      const unit = kernel.map(() => 1);
      ops.push(new ConvDropoutNormReLU(spec, inChannels, outChannels, unit, 1, { bias: false, dropout: false, nonlin: false }));
    }
    this.skip = this.addModule('skip', ops.length ? new Sequential(ops) : new Identity());
  }

  forward(x: Tensor): Tensor {
    const residual = this.skip.forward(x);
    const y = this.conv2.forward(this.conv1.forward(x)).add(residual);
    return this.nonlin2 ? this.nonlin2.forward(y) : y;
  }

  toOnnx(g: OnnxGraph, input: string): string {
    const residual = this.skip.toOnnx(g, input);
    const main = this.conv2.toOnnx(g, this.conv1.toOnnx(g, input));
    const y = g.node('Add', [main, residual]);
    return this.nonlin2 ? this.nonlin2.toOnnx(g, y) : y;
  }
}

/** n BasicBlockD, the first with `initialStride`; child `blocks`. */
export class StackedResidualBlocks extends Layer {
  readonly blocks: Sequential;

  constructor(spec: ConvSpec, n: number, inChannels: number, outChannels: number, kernel: readonly number[], initialStride: readonly number[]) {
    super();
    const blocks: Layer[] = [];
    for (let i = 0; i < n; i++) {
      blocks.push(new BasicBlockD(spec, i === 0 ? inChannels : outChannels, outChannels, kernel, i === 0 ? initialStride : kernel.map(() => 1)));
    }
    this.blocks = this.addModule('blocks', new Sequential(blocks));
  }

  forward(x: Tensor): Tensor {
    return this.blocks.forward(x);
  }

  toOnnx(g: OnnxGraph, input: string): string {
    return this.blocks.toOnnx(g, input);
  }
}
