// The tensor engine's public surface: libtorch tensors, ops, autograd, SGD and memory scopes
// through our N-API binding (server/native). Importing never loads libtorch; the first use does,
// and throws a how-to-fix error where the binding is not built (check with torchAvailable()).
export { torchAvailable, type Handle } from './torch/native.js';
export { tidy, keep, scopeDepth } from './torch/scope.js';
export {
  Tensor,
  tensor,
  scalar,
  zeros,
  ones,
  empty,
  full,
  zerosLike,
  onesLike,
  arange,
  linspace,
  rand,
  randn,
  randint,
  randperm,
  cat,
  stack,
  where,
  liveTensors,
  type DType,
  type Device,
  type Dims,
  type TypedArray,
  type FactoryOptions,
} from './torch/tensor.js';
export * as F from './torch/functional.js';
export { noGrad, enableGrad, isGradEnabled, zeroGrad } from './torch/autograd.js';
export { SGD, clipGradNorm, type SGDOptions } from './torch/optim.js';
export { autocast, GradScaler, type AutocastOptions, type GradScalerOptions } from './torch/amp.js';
export {
  cudaAvailable,
  cudaDeviceCount,
  cudaMemory,
  cudaEmptyCache,
  cudaSynchronize,
  setCudnnBenchmark,
  setNumThreads,
  getNumThreads,
  manualSeed,
  buildInfo,
  type BuildInfo,
  type CudaMemoryStats,
} from './torch/device.js';
