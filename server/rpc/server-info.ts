// nnunet.v1.ServerService: version, engines present and limits, for clients and operators.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { packageVersion, projectRoot, type ServerConfig } from '../config.js';
import { unary } from './errors.js';

/** Engines this process can use; probed once, since loading onnxruntime is not free. */
async function probeEngines(): Promise<string[]> {
  const engines: string[] = [];
  try {
    await import('onnxruntime-node');
    engines.push('onnxruntime-cpu');
  } catch {
    // onnxruntime-node not installed or its native library failed to load: inference unavailable
  }
  if (existsSync(join(projectRoot(), 'server', 'native', 'build', 'Release', 'nnunet_torch.node'))) engines.push('libtorch-cpu');
  return engines;
}

export function serverInfoService(config: ServerConfig, authEnabled: boolean): grpc.UntypedServiceImplementation {
  let engines: Promise<string[]> | undefined;
  return {
    GetServerInfo: unary(async () => ({
      version: packageVersion(),
      engines: await (engines ??= probeEngines()),
      max_voxels: config.maxVoxels,
      max_receive_message_bytes: config.maxReceiveMessageBytes,
      max_upload_bytes: config.maxUploadBytes,
      chunk_size_bytes: config.chunkSizeBytes,
      max_concurrent_predictions: config.maxConcurrentPredictions,
      max_queued_predictions: config.maxQueuedPredictions,
      auth_enabled: authEnabled,
    })),
  };
}
