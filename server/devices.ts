// The accelerators this host offers, as the server reports them (GetServerInfo) and sizes its
// training queue by them: the CUDA devices libtorch sees, and onnxruntime's execution providers.
// libtorch is probed in a short child process, never loaded into the server itself (training runs
// in child processes, and loading libtorch here would cost hundreds of MB); without an NVIDIA
// driver on the host (no /proc/driver/nvidia, no /dev/nvidiactl) there is nothing to probe.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { projectRoot } from './config.js';

export interface CudaDevices {
  /** torch.cuda.device_count() as libtorch sees it (CUDA_VISIBLE_DEVICES applies). */
  count: number;
  /** Why the count is 0, when it is: no driver, no binding, a CPU-only libtorch, or the probe failed. */
  note?: string;
}

const PROBE_TIMEOUT_MS = 60_000;

function bindingFile(env: NodeJS.ProcessEnv): string | undefined {
  const candidates = [
    ...(env.NNUNET_TORCH_BINDING ? [resolve(env.NNUNET_TORCH_BINDING)] : []),
    join(projectRoot(), 'server', 'native', 'build', 'Release', 'nnunet_torch.node'),
  ];
  return candidates.find((f) => existsSync(f));
}

/** Probes once; synchronous because the job queue's limits are set when it opens. */
export function probeCudaDevices(env: NodeJS.ProcessEnv = process.env): CudaDevices {
  if (!existsSync('/proc/driver/nvidia') && !existsSync('/dev/nvidiactl')) return { count: 0, note: 'no NVIDIA driver on this host' };
  const binding = bindingFile(env);
  if (!binding) return { count: 0, note: 'the libtorch binding is not built (node scripts/build-native.mjs)' };
  const script = `const b = require(${JSON.stringify(binding)}); process.stdout.write(JSON.stringify({ count: b.cudaDeviceCount(), cudaLinked: b.buildInfo().cudaLinked }));`;
  const probe = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: PROBE_TIMEOUT_MS });
  try {
    const out = JSON.parse(probe.stdout) as { count: number; cudaLinked: boolean };
    if (!out.cudaLinked) return { count: 0, note: 'the libtorch binding was built without CUDA' };
    return out.count > 0 ? { count: out.count } : { count: 0, note: 'libtorch sees no CUDA device' };
  } catch {
    return { count: 0, note: `the CUDA probe failed: ${(probe.error?.message ?? probe.stderr.trim().split('\n').pop()) || `exit code ${probe.status}`}` };
  }
}

let cached: CudaDevices | undefined;

/** probeCudaDevices, once per process. */
export function cudaDevices(): CudaDevices {
  return (cached ??= probeCudaDevices());
}

/** onnxruntime execution providers compiled into onnxruntime-node ("bundled": usable without extra libraries). */
export async function onnxExecutionProviders(): Promise<{ name: string; bundled: boolean }[]> {
  try {
    const ort = await import('onnxruntime-node');
    return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
  } catch {
    return [];
  }
}
