// Devices, threads and seeding: CUDA availability and memory (null where the binding was built
// without CUDA memory queries), libtorch's intra-op thread count, the global RNG seed.
import { lib, type BuildInfo, type CudaMemoryStats } from './native.js';

export type { BuildInfo, CudaMemoryStats };

export const cudaAvailable = (): boolean => lib().cudaAvailable();
export const cudaDeviceCount = (): number => lib().cudaDeviceCount();
/** Bytes allocated/reserved by libtorch's CUDA caching allocator, or null on CPU-only builds. */
export const cudaMemory = (device = 0): CudaMemoryStats | null => lib().cudaMemory(device);
export const cudaEmptyCache = (): void => lib().cudaEmptyCache();
export const cudaSynchronize = (device?: number): void => lib().cudaSynchronize(device);
/** torch.backends.cudnn.benchmark (nnU-Net turns it on for training). */
export const setCudnnBenchmark = (on: boolean): void => lib().setCudnnBenchmark(on);
export const setNumThreads = (n: number): void => lib().setNumThreads(n);
export const getNumThreads = (): number => lib().getNumThreads();
/** Seeds the CPU and every CUDA generator (torch.manual_seed). */
export const manualSeed = (seed: number): void => lib().manualSeed(seed);
export const buildInfo = (): BuildInfo => lib().buildInfo();
