// The layers nnU-Net's networks are made of, 2D or 3D by the kernel's length: Conv ('same'
// padding (k−1)/2 as dynamic_network_architectures), ConvTranspose, InstanceNorm (instance
// statistics in train and eval, no running stats), LeakyReLU/ReLU, Dropout, AvgPool, containers.
import { F, rand, type Device, type Tensor } from '../torch.js';
import { float, int, ints, type OnnxGraph } from '../onnx/graph.js';
import { Layer, Module } from './module.js';
import { Parameter } from './parameter.js';

function checkDims(kernel: readonly number[], what: string): 2 | 3 {
  if (kernel.length !== 2 && kernel.length !== 3) throw new Error(`${what}: kernel must have 2 or 3 entries, got [${kernel.join(', ')}]`);
  return kernel.length as 2 | 3;
}

function perDim(v: number | readonly number[], n: number, what: string): number[] {
  const out = typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (out.length !== n) throw new Error(`${what}: expected ${n} entries, got [${out.join(', ')}]`);
  return out;
}

export interface ConvOptions {
  stride?: number | readonly number[];
  bias?: boolean;
}

/** Convolution with 'same' padding (k−1)/2 per axis (floor, as nnU-Net); weight [out, in, ...k]. */
export class Conv extends Layer {
  readonly dims: 2 | 3;
  readonly kernel: number[];
  readonly stride: number[];
  readonly padding: number[];
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: readonly number[],
    o: ConvOptions = {},
  ) {
    super();
    this.dims = checkDims(kernel, 'Conv');
    this.kernel = [...kernel];
    this.stride = perDim(o.stride ?? 1, this.dims, 'Conv stride');
    this.padding = this.kernel.map((k) => Math.floor((k - 1) / 2));
    this.weight = this.addParameter('weight', new Parameter([outChannels, inChannels, ...kernel]));
    this.bias = o.bias === false ? null : this.addParameter('bias', new Parameter([outChannels]));
  }

  forward(x: Tensor): Tensor {
    const conv = this.dims === 3 ? F.conv3d : F.conv2d;
    return conv(x, this.weight.tensor, { bias: this.bias?.tensor ?? null, stride: this.stride, padding: this.padding });
  }

  toOnnx(g: OnnxGraph, input: string): string {
    const inputs = [input, g.param(this.weight), ...(this.bias ? [g.param(this.bias)] : [])];
    return g.node('Conv', inputs, {
      kernel_shape: ints(this.kernel),
      strides: ints(this.stride),
      pads: ints([...this.padding, ...this.padding]),
      dilations: ints(this.kernel.map(() => 1)),
      group: int(1),
    });
  }
}

/** Transposed convolution without padding (nnU-Net's upsampling: kernel = stride); weight [in, out, ...k]. */
export class ConvTranspose extends Layer {
  readonly dims: 2 | 3;
  readonly kernel: number[];
  readonly stride: number[];
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: readonly number[],
    o: ConvOptions = {},
  ) {
    super();
    this.dims = checkDims(kernel, 'ConvTranspose');
    this.kernel = [...kernel];
    this.stride = perDim(o.stride ?? kernel, this.dims, 'ConvTranspose stride');
    this.weight = this.addParameter('weight', new Parameter([inChannels, outChannels, ...kernel]));
    this.bias = o.bias === false ? null : this.addParameter('bias', new Parameter([outChannels]));
  }

  forward(x: Tensor): Tensor {
    const conv = this.dims === 3 ? F.convTranspose3d : F.convTranspose2d;
    return conv(x, this.weight.tensor, { bias: this.bias?.tensor ?? null, stride: this.stride });
  }

  toOnnx(g: OnnxGraph, input: string): string {
    const inputs = [input, g.param(this.weight), ...(this.bias ? [g.param(this.bias)] : [])];
    return g.node('ConvTranspose', inputs, { kernel_shape: ints(this.kernel), strides: ints(this.stride) }, 'ConvTranspose');
  }
}

/** Per-sample, per-channel normalisation over the spatial axes (biased variance), as torch's InstanceNormNd. */
export class InstanceNorm extends Layer {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;

  constructor(
    readonly channels: number,
    readonly eps = 1e-5,
    affine = true,
  ) {
    super();
    this.weight = affine ? this.addParameter('weight', new Parameter([channels], new Float32Array(channels).fill(1))) : null;
    this.bias = affine ? this.addParameter('bias', new Parameter([channels])) : null;
  }

  forward(x: Tensor): Tensor {
    return F.instanceNorm(x, { weight: this.weight?.tensor ?? null, bias: this.bias?.tensor ?? null, eps: this.eps });
  }

  toOnnx(g: OnnxGraph, input: string): string {
    const c = this.channels;
    const scale = this.weight ? g.param(this.weight) : g.constant('instance_norm_unit_scale', [c], new Float32Array(c).fill(1));
    const shift = this.bias ? g.param(this.bias) : g.constant('instance_norm_zero_bias', [c], new Float32Array(c));
    return g.node('InstanceNormalization', [input, scale, shift], { epsilon: float(this.eps) });
  }
}

export class LeakyReLU extends Layer {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.negativeSlope);
  }
  toOnnx(g: OnnxGraph, input: string): string {
    return g.node('LeakyRelu', [input], { alpha: float(this.negativeSlope) });
  }
}

export class ReLU extends Layer {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
  toOnnx(g: OnnxGraph, input: string): string {
    return g.node('Relu', [input]);
  }
}

/**
 * Dropout while training, identity in eval mode and in the exported graph. `channelwise` drops
 * whole feature maps, as torch's Dropout2d/3d (nnU-Net's dropout_op when a plan sets one).
 */
export class Dropout extends Layer {
  constructor(
    readonly p = 0.5,
    readonly channelwise = false,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    // Identity returns its input itself: no copy, and the caller's scope still owns it.
    if (!this.training || this.p === 0) return x;
    if (!this.channelwise) return F.dropout(x, this.p, true);
    const maskShape = x.shape.map((s, i) => (i < 2 ? s : 1));
    const keepMask = rand(maskShape, { device: x.device as Device }).ge(this.p).to('float32').div(1 - this.p);
    return x.mul(keepMask);
  }
  toOnnx(_g: OnnxGraph, input: string): string {
    return input;
  }
}

/** Average pooling with kernel = stride and no padding (ResNet-D's skip path). */
export class AvgPool extends Layer {
  readonly kernel: number[];
  readonly stride: number[];
  constructor(kernel: readonly number[], stride: readonly number[] = kernel) {
    super();
    checkDims(kernel, 'AvgPool');
    this.kernel = [...kernel];
    this.stride = perDim(stride, kernel.length, 'AvgPool stride');
  }
  forward(x: Tensor): Tensor {
    return F.avgPool(x, this.kernel, this.stride);
  }
  toOnnx(g: OnnxGraph, input: string): string {
    return g.node('AveragePool', [input], {
      kernel_shape: ints(this.kernel),
      strides: ints(this.stride),
      pads: ints([...this.kernel.map(() => 0), ...this.kernel.map(() => 0)]),
    });
  }
}

/** Returns its input tensor itself (no copy; the caller's scope still owns it). */
export class Identity extends Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
  toOnnx(_g: OnnxGraph, input: string): string {
    return input;
  }
}

/** Layers run in order; children are named "0", "1", ... as torch's nn.Sequential. */
export class Sequential extends Layer {
  readonly layers: Layer[];
  constructor(layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.addModule(String(i), l));
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = l.forward(y);
    return y;
  }
  toOnnx(g: OnnxGraph, input: string): string {
    let y = input;
    for (const l of this.layers) y = l.toOnnx(g, y);
    return y;
  }
}

/** An indexed list of modules with no forward of its own (torch's nn.ModuleList). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.addModule(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items.at(i);
    if (!m) throw new Error(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }
}
