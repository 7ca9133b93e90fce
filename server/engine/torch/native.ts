// Loads the libtorch binding (server/native) lazily, on first use, so importing the engine
// never fails on an inference-only machine; `torchAvailable()` asks without throwing.
// Also declares the binding's raw interface: handles are opaque, ops are looked up by name.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

declare const handleBrand: unique symbol;
/** An opaque native tensor owned by the binding; only Tensor holds these. */
export type Handle = { readonly [handleBrand]: true };
type TS = Handle | number | boolean;
type Dims = number[] | null | undefined;

export interface CudaMemoryStats {
  allocated: number;
  reserved: number;
  maxAllocated: number;
  maxReserved: number;
}

export interface BuildInfo {
  torchVersion: string;
  cudaLinked: boolean;
  cudaMemoryQueries: boolean;
  cxx11Abi: boolean;
}

export interface NativeTorch {
  fromArray(data: ArrayBufferView, shape: number[], dtype?: string): Handle;
  data(h: Handle): Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
  item(h: Handle): number | boolean;
  shape(h: Handle): number[];
  dtype(h: Handle): string;
  device(h: Handle): string;
  numel(h: Handle): number;
  isLive(h: Handle): boolean;
  dispose(h: Handle): void;
  liveTensors(): number;
  to(h: Handle, dtype?: string | null, device?: string | null, copy?: boolean): Handle;
  clone(h: Handle): Handle;
  detach(h: Handle): Handle;
  contiguous(h: Handle): Handle;
  empty(shape: number[], dtype?: string | null, device?: string | null): Handle;
  zeros(shape: number[], dtype?: string | null, device?: string | null): Handle;
  ones(shape: number[], dtype?: string | null, device?: string | null): Handle;
  full(shape: number[], value: number | boolean, dtype?: string | null, device?: string | null): Handle;
  arange(start: number, end: number, step: number, dtype?: string | null, device?: string | null): Handle;
  linspace(start: number, end: number, steps: number, dtype?: string | null, device?: string | null): Handle;
  rand(shape: number[], dtype?: string | null, device?: string | null): Handle;
  randn(shape: number[], dtype?: string | null, device?: string | null): Handle;
  randint(low: number, high: number, shape: number[], dtype?: string | null, device?: string | null): Handle;
  randperm(n: number, dtype?: string | null, device?: string | null): Handle;
  manualSeed(seed: number | bigint): void;
  inplace(op: string, h: Handle, a?: TS | null, b?: TS | null): void;

  reshape(h: Handle, shape: number[]): Handle;
  view(h: Handle, shape: number[]): Handle;
  permute(h: Handle, dims: number[]): Handle;
  transpose(h: Handle, d0: number, d1: number): Handle;
  expand(h: Handle, shape: number[]): Handle;
  repeat(h: Handle, repeats: number[]): Handle;
  unsqueeze(h: Handle, dim: number): Handle;
  squeeze(h: Handle, dim?: number | null): Handle;
  slice(h: Handle, dim: number, start: number, end?: number | null, step?: number): Handle;
  narrow(h: Handle, dim: number, start: number, length: number): Handle;
  indexSelect(h: Handle, dim: number, index: Handle): Handle;
  flip(h: Handle, dims: number[]): Handle;
  cat(hs: Handle[], dim: number): Handle;
  stack(hs: Handle[], dim: number): Handle;
  pad(h: Handle, pads: number[], mode: string, value: number): Handle;
  gather(h: Handle, dim: number, index: Handle): Handle;
  scatter(h: Handle, dim: number, index: Handle, src: TS): Handle;
  scatterAdd(h: Handle, dim: number, index: Handle, src: Handle): Handle;
  oneHot(h: Handle, numClasses: number): Handle;
  maskedFill(h: Handle, mask: Handle, value: TS): Handle;
  maskedSelect(h: Handle, mask: Handle): Handle;
  nonzero(h: Handle): Handle;

  unary(op: string, h: Handle): Handle;
  binary(op: string, a: TS, b: TS): Handle;
  clamp(h: Handle, min?: number | null, max?: number | null): Handle;
  where(cond: Handle, a: TS, b: TS): Handle;
  reduce(op: string, h: Handle, dims?: Dims, keepdim?: boolean): Handle;
  variance(h: Handle, dims: Dims, unbiased: boolean, keepdim: boolean, std: boolean): Handle;
  argmax(h: Handle, dim?: number | null, keepdim?: boolean): Handle;
  argmin(h: Handle, dim?: number | null, keepdim?: boolean): Handle;
  norm(h: Handle, p: number, dims?: Dims, keepdim?: boolean): Handle;
  allclose(a: Handle, b: Handle, rtol: number, atol: number): boolean;

  conv(
    input: Handle,
    weight: Handle,
    bias: Handle | null,
    stride: number[],
    padding: number[],
    dilation: number[],
    transposed: boolean,
    outputPadding: number[],
    groups: number,
  ): Handle;
  instanceNorm(input: Handle, weight: Handle | null, bias: Handle | null, eps: number): Handle;
  groupNorm(input: Handle, groups: number, weight: Handle | null, bias: Handle | null, eps: number): Handle;
  batchNorm(
    input: Handle,
    runningMean: Handle | null,
    runningVar: Handle | null,
    weight: Handle | null,
    bias: Handle | null,
    training: boolean,
    momentum: number,
    eps: number,
  ): Handle;
  leakyRelu(h: Handle, slope: number): Handle;
  softmax(h: Handle, dim: number): Handle;
  logSoftmax(h: Handle, dim: number): Handle;
  dropout(h: Handle, p: number, train: boolean): Handle;
  nllLoss(logp: Handle, target: Handle, weight: Handle | null, reduction: string, ignoreIndex: number): Handle;
  crossEntropy(
    logits: Handle,
    target: Handle,
    weight: Handle | null,
    reduction: string,
    ignoreIndex: number,
    labelSmoothing: number,
  ): Handle;
  bceWithLogits(logits: Handle, target: Handle, weight: Handle | null, posWeight: Handle | null, reduction: string): Handle;
  interpolate(h: Handle, mode: string, size: number[] | null, scales: number[] | null, alignCorners: boolean): Handle;
  affineGrid(theta: Handle, size: number[], alignCorners: boolean): Handle;
  gridSample(input: Handle, grid: Handle, mode: string, paddingMode: string, alignCorners: boolean): Handle;
  maxPool(h: Handle, kernel: number[], stride: number[], padding: number[]): Handle;
  avgPool(h: Handle, kernel: number[], stride: number[], padding: number[]): Handle;

  requiresGrad(h: Handle): boolean;
  setRequiresGrad(h: Handle, on: boolean): void;
  isLeaf(h: Handle): boolean;
  backward(h: Handle, grad: Handle | null, retainGraph: boolean | null): void;
  grad(h: Handle): Handle | null;
  setGrad(h: Handle, g: Handle | null): void;
  zeroGrad(hs: Handle[], setToNone: boolean): void;
  gradEnabled(): boolean;
  setGradEnabled(on: boolean): void;
  autocastEnabled(device: string): boolean;
  setAutocastEnabled(device: string, on: boolean): void;
  autocastClearCache(): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(device?: number): void;
  setCudnnBenchmark(on: boolean): void;
  cudaMemory(device?: number): CudaMemoryStats | null;
  cudaEmptyCache(): void;
  buildInfo(): BuildInfo;

  sgdStep(
    params: Handle[],
    buffers: (Handle | null)[],
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
  ): (Handle | null)[];
  clipGradNorm(params: Handle[], maxNorm: number, normType: number): number;
}

const BINDING = 'nnunet_torch.node';
const HOW_TO_FIX =
  'install libtorch (apt-get install libtorch-dev, or set LIBTORCH_DIR to a libtorch or a PyTorch ' +
  "wheel's torch/ folder) and run `node scripts/build-native.mjs`";

let loaded: NativeTorch | null = null;
let loadError: Error | null = null;

/** Where the built addon may be: beside the sources, or (compiled to dist/) in the source tree. */
function candidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const fromEnv = process.env.NNUNET_TORCH_BINDING;
  return [
    ...(fromEnv ? [path.resolve(fromEnv)] : []),
    path.resolve(here, '..', '..', 'native', 'build', 'Release', BINDING),
    path.resolve(here, '..', '..', '..', '..', 'server', 'native', 'build', 'Release', BINDING),
  ];
}

function load(): NativeTorch {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  const file = candidates().find((p) => existsSync(p));
  if (!file) {
    loadError = new Error(`libtorch binding not built: server/native/build/Release/${BINDING} is missing; ${HOW_TO_FIX}`);
    throw loadError;
  }
  try {
    loaded = createRequire(import.meta.url)(file) as NativeTorch;
    // Debian's OpenMP libtorch starts with one intra-op thread unless OMP_NUM_THREADS is set;
    // PyTorch uses every core by default, and convolutions scale with them.
    if (!process.env.OMP_NUM_THREADS && loaded.getNumThreads() < availableParallelism()) {
      loaded.setNumThreads(availableParallelism());
    }
    return loaded;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    loadError = new Error(`libtorch binding failed to load (${file}): ${msg}; ${HOW_TO_FIX}`);
    throw loadError;
  }
}

/** The binding; throws a message that says how to build it when it is missing. */
export function lib(): NativeTorch {
  return loaded ?? load();
}

/** Whether the libtorch binding is built and loads; never throws. */
export function torchAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}
