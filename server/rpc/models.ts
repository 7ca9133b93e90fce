// nnunet.v1.ModelService: the model repository as seen by clients.
import type * as grpc from '@grpc/grpc-js';
import type { ServerConfig } from '../config.js';
import { listModels } from '../models/repository.js';
import { unary } from './errors.js';

export function modelService(config: ServerConfig): grpc.UntypedServiceImplementation {
  return {
    ListModels: unary(async (request: { dataset?: string }) => ({
      models: listModels(config.roots.results, request.dataset || undefined).map(({ folder: _folder, ...m }) => m),
    })),
  };
}
