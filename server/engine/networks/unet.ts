// nnU-Net v2's U-Nets (dynamic_network_architectures PlainConvUNet and ResidualEncoderUNet,
// REFERENCE §6.1/§6.3): encoder with strided-conv downsampling, UNetDecoder with transposed-conv
// upsampling, concat (upsampled first) and a 1×1 seg head per stage. Keys match nnU-Net's.
import { cat, tidy, type Tensor } from '../torch.js';
import { int, type OnnxGraph } from '../onnx/graph.js';
import { Module } from '../nn/module.js';
import { Conv, ConvTranspose, InstanceNorm, ModuleList, Sequential } from '../nn/layers.js';
import { kaimingNormal, NormalRng } from '../nn/init.js';
import { BasicBlockD, StackedConvBlocks, StackedResidualBlocks, type ConvSpec } from './blocks.js';

/** Everything the network classes take from a plans `architecture` block, resolved. */
export interface UNetArchitecture {
  /** The plans' network_class_name (Python import path), kept for metadata. */
  networkClassName: string;
  nStages: number;
  featuresPerStage: number[];
  kernelSizes: number[][];
  strides: number[][];
  /** PlainConvUNet: convs per encoder stage; ResidualEncoderUNet: residual blocks per stage. */
  perStage: number[];
  nConvPerStageDecoder: number[];
  spec: ConvSpec;
  /** ResidualEncoderUNet's stem width (default features_per_stage[0]). */
  stemChannels?: number;
}

export interface UNetOptions {
  deepSupervision?: boolean;
  /** He initialisation as nnU-Net's (default true); false leaves zeros for weights about to be loaded. */
  initialize?: boolean;
  /** Seed of the initialisation (default: random). */
  seed?: number;
}

/** What the decoder needs to know about an encoder, and how to run it. */
export abstract class Encoder extends Module {
  abstract readonly outputChannels: number[];
  abstract readonly strides: number[][];
  abstract readonly kernelSizes: number[][];
  /** The output of every stage, the bottleneck last. */
  abstract forwardSkips(x: Tensor): Tensor[];
  abstract skipsToOnnx(g: OnnxGraph, input: string): string[];
}

const ones = (n: number) => new Array<number>(n).fill(1);

/** Stage s = Sequential([StackedConvBlocks]) (hence `stages.{s}.0.convs`), first conv strided. */
export class PlainConvEncoder extends Encoder {
  readonly stages: Sequential;
  readonly outputChannels: number[];
  readonly strides: number[][];
  readonly kernelSizes: number[][];

  constructor(inputChannels: number, a: UNetArchitecture) {
    super();
    const stages = [];
    let c = inputChannels;
    for (let s = 0; s < a.nStages; s++) {
      stages.push(new Sequential([new StackedConvBlocks(a.spec, a.perStage[s], c, a.featuresPerStage[s], a.kernelSizes[s], a.strides[s])]));
      c = a.featuresPerStage[s];
    }
    this.stages = this.addModule('stages', new Sequential(stages));
    this.outputChannels = [...a.featuresPerStage];
    this.strides = a.strides.map((s) => [...s]);
    this.kernelSizes = a.kernelSizes.map((k) => [...k]);
  }

  forwardSkips(x: Tensor): Tensor[] {
    const skips: Tensor[] = [];
    let y = x;
    for (const stage of this.stages.layers) skips.push((y = stage.forward(y)));
    return skips;
  }

  skipsToOnnx(g: OnnxGraph, input: string): string[] {
    const skips: string[] = [];
    let y = input;
    for (const stage of this.stages.layers) skips.push((y = stage.toOnnx(g, y)));
    return skips;
  }
}

/** Stem (one conv block, stride 1) then StackedResidualBlocks per stage (`stages.{s}.blocks.{b}`). */
export class ResidualEncoder extends Encoder {
  readonly stem: StackedConvBlocks;
  readonly stages: Sequential;
  readonly outputChannels: number[];
  readonly strides: number[][];
  readonly kernelSizes: number[][];

  constructor(inputChannels: number, a: UNetArchitecture) {
    super();
    const stemChannels = a.stemChannels ?? a.featuresPerStage[0];
    this.stem = this.addModule('stem', new StackedConvBlocks(a.spec, 1, inputChannels, stemChannels, a.kernelSizes[0], ones(a.spec.dims)));
    const stages = [];
    let c = stemChannels;
    for (let s = 0; s < a.nStages; s++) {
      stages.push(new StackedResidualBlocks(a.spec, a.perStage[s], c, a.featuresPerStage[s], a.kernelSizes[s], a.strides[s]));
      c = a.featuresPerStage[s];
    }
    this.stages = this.addModule('stages', new Sequential(stages));
    this.outputChannels = [...a.featuresPerStage];
    this.strides = a.strides.map((s) => [...s]);
    this.kernelSizes = a.kernelSizes.map((k) => [...k]);
  }

  forwardSkips(x: Tensor): Tensor[] {
    const skips: Tensor[] = [];
    let y = this.stem.forward(x);
    for (const stage of this.stages.layers) skips.push((y = stage.forward(y)));
    return skips;
  }

  skipsToOnnx(g: OnnxGraph, input: string): string[] {
    const skips: string[] = [];
    let y = this.stem.toOnnx(g, input);
    for (const stage of this.stages.layers) skips.push((y = stage.toOnnx(g, y)));
    return skips;
  }
}

/**
 * Decoder stage t (t = 0 deepest): transpconv (kernel = stride of the stage below) → concat with the
 * skip → StackedConvBlocks → 1×1 seg head. All heads exist even without deep supervision (so any
 * checkpoint loads); the encoder is also registered as `encoder` (an alias, as in nnU-Net).
 */
export class UNetDecoder extends Module {
  readonly stages: ModuleList<StackedConvBlocks>;
  readonly transpconvs: ModuleList<ConvTranspose>;
  readonly seg_layers: ModuleList<Conv>;

  constructor(
    readonly encoder: Encoder,
    readonly numClasses: number,
    nConvPerStage: number[],
    spec: ConvSpec,
  ) {
    super();
    this.addAlias('encoder', encoder);
    const n = encoder.outputChannels.length;
    const stages: StackedConvBlocks[] = [];
    const transpconvs: ConvTranspose[] = [];
    const segLayers: Conv[] = [];
    for (let s = 1; s < n; s++) {
      const below = encoder.outputChannels[n - s];
      const skip = encoder.outputChannels[n - s - 1];
      const stride = encoder.strides[n - s];
      transpconvs.push(new ConvTranspose(below, skip, stride, { stride, bias: spec.bias }));
      stages.push(new StackedConvBlocks(spec, nConvPerStage[s - 1], 2 * skip, skip, encoder.kernelSizes[n - s - 1], ones(spec.dims)));
      segLayers.push(new Conv(skip, numClasses, ones(spec.dims), { bias: true }));
    }
    this.stages = this.addModule('stages', new ModuleList(stages));
    this.transpconvs = this.addModule('transpconvs', new ModuleList(transpconvs));
    this.seg_layers = this.addModule('seg_layers', new ModuleList(segLayers));
  }

  /** Logits of every head (deepSupervision) or of the full-resolution head only; full resolution first. */
  forward(skips: Tensor[], deepSupervision: boolean): Tensor[] {
    const outputs: Tensor[] = [];
    const last = this.stages.length - 1;
    let lres = skips[skips.length - 1];
    for (let s = 0; s <= last; s++) {
      const up = this.transpconvs.at(s).forward(lres);
      const x = this.stages.at(s).forward(cat([up, skips[skips.length - s - 2]], 1));
      if (deepSupervision || s === last) outputs.push(this.seg_layers.at(s).forward(x));
      lres = x;
    }
    return outputs.reverse();
  }

  /** The inference graph: full-resolution logits only. */
  toOnnx(g: OnnxGraph, skips: string[]): string {
    let lres = skips[skips.length - 1];
    for (let s = 0; s < this.stages.length; s++) {
      const up = this.transpconvs.at(s).toOnnx(g, lres);
      const joined = g.node('Concat', [up, skips[skips.length - s - 2]], { axis: int(1) });
      lres = this.stages.at(s).toOnnx(g, joined);
    }
    return this.seg_layers.at(this.stages.length - 1).toOnnx(g, lres);
  }
}

/** A U-Net as nnU-Net builds it from plans: `encoder` + `decoder`, no softmax inside. */
export abstract class UNet extends Module {
  abstract readonly encoder: Encoder;
  abstract readonly decoder: UNetDecoder;
  /** As nnU-Net's decoder.deep_supervision: forward returns every head when set. */
  deepSupervision: boolean;

  constructor(
    readonly architecture: UNetArchitecture,
    readonly inputChannels: number,
    readonly numClasses: number,
    o: UNetOptions,
  ) {
    super();
    if (architecture.nStages < 2) throw new Error(`a U-Net needs at least 2 stages, got ${architecture.nStages}`);
    this.deepSupervision = o.deepSupervision ?? false;
  }

  get dims(): 2 | 3 {
    return this.architecture.spec.dims;
  }

  /** Input sizes must be multiples of this per axis (the product of the strides). */
  get spatialDivisor(): number[] {
    return this.architecture.strides.reduce((acc, s) => acc.map((v, i) => v * s[i]), ones(this.dims));
  }

  /**
   * With deepSupervision: logits of every decoder stage, full resolution first (training);
   * otherwise the full-resolution logits [N, numClasses, ...spatial] (inference).
   */
  forward(x: Tensor): Tensor | Tensor[] {
    const out = this.run(x, this.deepSupervision);
    return this.deepSupervision ? out : out[0];
  }

  /** Every deep-supervision output, full resolution first, whatever deepSupervision says. */
  forwardDeepSupervision(x: Tensor): Tensor[] {
    return this.run(x, true);
  }

  /** Full-resolution logits only (the inference path, as the exported graph computes). */
  predictLogits(x: Tensor): Tensor {
    return this.run(x, false)[0];
  }

  private run(x: Tensor, deepSupervision: boolean): Tensor[] {
    const bad = x.shape.slice(2).findIndex((s, i) => s % this.spatialDivisor[i] !== 0);
    if (x.ndim !== this.dims + 2 || x.shape[1] !== this.inputChannels || bad >= 0) {
      throw new Error(
        `input [${x.shape.join(', ')}] must be [N, ${this.inputChannels}, ...${this.dims} spatial sizes divisible by [${this.spatialDivisor.join(', ')}]]`,
      );
    }
    // Intermediate handles are released here; autograd keeps what backward needs.
    return tidy(() => this.decoder.forward(this.encoder.forwardSkips(x), deepSupervision));
  }

  /** Appends the inference graph (full-resolution logits) and returns its output name. */
  toOnnx(g: OnnxGraph, input: string): string {
    return this.decoder.toOnnx(g, this.encoder.skipsToOnnx(g, input));
  }

  /** What an exported model says about itself (ONNX metadata_props). */
  onnxMetadata(): Record<string, string> {
    const a = this.architecture;
    return {
      network_class_name: a.networkClassName,
      input_channels: String(this.inputChannels),
      num_classes: String(this.numClasses),
      spatial_dims: String(this.dims),
      spatial_divisor: JSON.stringify(this.spatialDivisor),
      architecture: JSON.stringify({
        n_stages: a.nStages,
        features_per_stage: a.featuresPerStage,
        kernel_sizes: a.kernelSizes,
        strides: a.strides,
        per_stage: a.perStage,
        n_conv_per_stage_decoder: a.nConvPerStageDecoder,
        ...a.spec,
      }),
      parameters: String(this.numParameters()),
    };
  }

  /**
   * nnU-Net's InitWeights_He(1e-2): kaiming-normal conv and transposed-conv weights, zero biases;
   * norms start at weight 1, bias 0. Subclasses add their own rules (ResEnc's zeroed last norm).
   */
  initialize(seed?: number): this {
    const rng = new NormalRng(seed);
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv || m instanceof ConvTranspose) {
        kaimingNormal(m.weight, rng, 1e-2);
        m.bias?.fill(0);
      } else if (m instanceof InstanceNorm) {
        m.weight?.fill(1);
        m.bias?.fill(0);
      }
    }
    return this;
  }
}

export class PlainConvUNet extends UNet {
  readonly encoder: PlainConvEncoder;
  readonly decoder: UNetDecoder;

  constructor(a: UNetArchitecture, inputChannels: number, numClasses: number, o: UNetOptions = {}) {
    super(a, inputChannels, numClasses, o);
    this.encoder = this.addModule('encoder', new PlainConvEncoder(inputChannels, a));
    this.decoder = this.addModule('decoder', new UNetDecoder(this.encoder, numClasses, a.nConvPerStageDecoder, a.spec));
    if (o.initialize !== false) this.initialize(o.seed);
  }
}

export class ResidualEncoderUNet extends UNet {
  readonly encoder: ResidualEncoder;
  readonly decoder: UNetDecoder;

  constructor(a: UNetArchitecture, inputChannels: number, numClasses: number, o: UNetOptions = {}) {
    super(a, inputChannels, numClasses, o);
    this.encoder = this.addModule('encoder', new ResidualEncoder(inputChannels, a));
    this.decoder = this.addModule('decoder', new UNetDecoder(this.encoder, numClasses, a.nConvPerStageDecoder, a.spec));
    if (o.initialize !== false) this.initialize(o.seed);
  }

  /** He init, then init_last_bn_before_add_to_0: each residual block starts as its skip path. */
  override initialize(seed?: number): this {
    super.initialize(seed);
    for (const [, m] of this.namedModules()) {
      if (m instanceof BasicBlockD) {
        m.conv2.norm?.weight?.fill(0);
        m.conv2.norm?.bias?.fill(0);
      }
    }
    return this;
  }
}
