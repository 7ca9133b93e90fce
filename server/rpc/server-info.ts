// nnunet.v1.ServerService: version, engines present, accelerators, ports and limits, for clients
// and operators.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { packageVersion, projectRoot, trainingConcurrency, type ServerConfig } from '../config.js';
import { cudaDevices, onnxExecutionProviders } from '../devices.js';
import { unary } from './errors.js';

/** Bound ports, filled in by main.ts once the listeners are up. */
export interface ServerPorts {
  grpc?: number;
  metrics?: number;
  health?: number;
}

/** Engines this process can use; probed once, since loading onnxruntime is not free. */
async function probeEngines(): Promise<string[]> {
  const engines: string[] = [];
  try {
    await import('onnxruntime-node');
    engines.push('onnxruntime-cpu');
  } catch {
    // onnxruntime-node not installed or its native library failed to load: inference unavailable
  }
  if (existsSync(join(projectRoot(), 'server', 'native', 'build', 'Release', 'nnunet_torch.node'))) {
    engines.push('libtorch-cpu');
    if (cudaDevices().count > 0) engines.push('libtorch-cuda');
  }
  return engines;
}

export function serverInfoService(config: ServerConfig, authEnabled: boolean, ports: ServerPorts = {}): grpc.UntypedServiceImplementation {
  let engines: Promise<string[]> | undefined;
  let providers: ReturnType<typeof onnxExecutionProviders> | undefined;
  return {
    GetServerInfo: unary(async () => {
      const cuda = cudaDevices();
      return {
        version: packageVersion(),
        engines: await (engines ??= probeEngines()),
        max_voxels: config.maxVoxels,
        max_receive_message_bytes: config.maxReceiveMessageBytes,
        max_upload_bytes: config.maxUploadBytes,
        chunk_size_bytes: config.chunkSizeBytes,
        max_concurrent_predictions: config.maxConcurrentPredictions,
        max_queued_predictions: config.maxQueuedPredictions,
        auth_enabled: authEnabled,
        ports: { grpc: ports.grpc ?? 0, metrics: ports.metrics ?? 0, health: ports.health ?? 0 },
        cuda_device_count: cuda.count,
        cuda_note: cuda.note ?? '',
        onnxruntime_execution_providers: await (providers ??= onnxExecutionProviders()),
        max_concurrent_trainings: trainingConcurrency(process.env, cuda.count),
        preprocess_workers: config.preprocessWorkers,
      };
    }),
  };
}
