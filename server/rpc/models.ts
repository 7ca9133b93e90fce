// nnunet.v1.ModelService: the model repository (nnUNet_results) as seen by clients: list, describe,
// install from an uploaded zip (server/models/install.ts does the verified, atomic install),
// delete. Installing from the catalog or a URL is a later stage and answers UNIMPLEMENTED.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parseDatasetJson } from '../dataset/dataset-json.js';
import { installModelZip } from '../models/install.js';
import { listModels, type ModelFolder } from '../models/repository.js';
import { getConfiguration, loadPlans } from '../planning/plans.js';
import { callLogger, type RpcContext } from './context.js';
import { clientStreaming, invalidArgument, notFound, RpcError, unary } from './errors.js';
import type { ModelCache } from './model-cache.js';
import { receiveChunkedFile, type UploadMessage } from './upload.js';
import { checkDatasetRef, checkDeclaredSize, checkName } from './validate.js';

export interface ModelRef {
  dataset?: string;
  trainer?: string;
  plans?: string;
  configuration?: string;
  model_folder?: string;
}

const publicModel = ({ folder: _folder, ...m }: ModelFolder) => m;

/** The installed model folder a ModelRef names; INVALID_ARGUMENT for a malformed ref, NOT_FOUND when absent. */
export function resolveModel(resultsRoot: string, ref: ModelRef | null | undefined, field: string): ModelFolder {
  if (!ref) throw invalidArgument(field, 'the model is required (dataset + configuration, or dataset + model_folder)');
  const dataset = checkDatasetRef(`${field}.dataset`, ref.dataset);
  let trainer: string, plans: string, configuration: string;
  if (ref.model_folder) {
    if (ref.trainer || ref.plans || ref.configuration) throw invalidArgument(`${field}.model_folder`, 'give either model_folder or trainer/plans/configuration, not both');
    const parts = ref.model_folder.split('__');
    if (parts.length !== 3) throw invalidArgument(`${field}.model_folder`, 'must be <Trainer>__<Plans>__<configuration>');
    [trainer, plans, configuration] = parts.map((p) => checkName(`${field}.model_folder`, p));
  } else {
    configuration = checkName(`${field}.configuration`, ref.configuration, 'configuration');
    trainer = ref.trainer ? checkName(`${field}.trainer`, ref.trainer, 'trainer') : 'nnUNetTrainer';
    plans = ref.plans ? checkName(`${field}.plans`, ref.plans, 'plans') : 'nnUNetPlans';
  }
  const candidates = listModels(resultsRoot, dataset);
  const hit = candidates.find((m) => m.trainer === trainer && m.plans === plans && m.configuration === configuration);
  if (!hit) {
    const known = candidates.map((m) => `${m.dataset}/${m.trainer}__${m.plans}__${m.configuration}`).join(', ') || 'none';
    throw notFound(`model ${dataset}/${trainer}__${plans}__${configuration} is not installed (installed for this dataset: ${known})`);
  }
  return hit;
}

async function describeModel(m: ModelFolder) {
  const { json, problems } = parseDatasetJson(JSON.parse(await readFile(join(m.folder, 'dataset.json'), 'utf8')));
  if (problems.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, `${m.dataset}/${m.trainer}__${m.plans}__${m.configuration}/dataset.json is invalid: ${problems.join('; ')}`);
  const plans = await loadPlans(join(m.folder, 'plans.json'));
  const configuration = getConfiguration(plans, m.configuration);
  return {
    model: publicModel(m),
    channel_names: Object.entries(json.channel_names).sort(([a], [b]) => Number(a) - Number(b)).map(([, n]) => n),
    labels: Object.entries(json.labels).map(([name, v]) => ({ name, values: Array.isArray(v) ? v : [v] })),
    patch_size: configuration.patch_size,
    spacing: configuration.spacing,
    file_ending: json.file_ending,
  };
}

interface InstallHeader {
  size_bytes: number;
  overwrite: boolean;
}

export function modelService(ctx: RpcContext, cache: ModelCache): grpc.UntypedServiceImplementation {
  const results = () => ctx.config.roots.results;
  return {
    ListModels: unary(async (request: { dataset?: string }) => ({
      models: listModels(results(), request.dataset ? checkDatasetRef('dataset', request.dataset) : undefined).map(publicModel),
    })),

    GetModel: unary(async (r: { model?: ModelRef }) => describeModel(resolveModel(results(), r.model, 'model'))),

    InstallModel: clientStreaming(async (call: grpc.ServerReadableStream<UploadMessage<InstallHeader>, unknown>) => {
      await mkdir(ctx.config.tmpDir, { recursive: true });
      const dir = await mkdtemp(join(ctx.config.tmpDir, 'nnunet-install-'));
      try {
        const received = await receiveChunkedFile(call, {
          method: 'InstallModel',
          metrics: ctx.metrics,
          onHeader: async (h: InstallHeader) => ({ value: h, sizeBytes: checkDeclaredSize('header.size_bytes', h.size_bytes, ctx.config.maxUploadBytes), tmpFile: join(dir, 'model.zip') }),
        });
        const log = callLogger(ctx, call, 'InstallModel');
        const installed = await installModelZip(received.tmpFile, results(), {
          overwrite: received.header.overwrite,
          onProgress: (message) => log.info({ event: 'install_progress' }, message),
        });
        for (const m of installed) cache.invalidate(m.folder);
        const models = listModels(results()).filter((m) => installed.some((i) => i.folder === m.folder));
        log.info({ event: 'model_installed', models: installed.map((m) => `${m.dataset}/${m.model}`) }, `installed ${installed.length} model(s)`);
        return { models: models.map(publicModel) };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }),

    InstallPretrainedModel: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback({
        code: grpc.status.UNIMPLEMENTED,
        details: 'installing from the pretrained catalog or a URL is not implemented yet (it needs models/catalog.json and a download stage); upload the zip with InstallModel instead',
      }),

    DeleteModel: unary(async (r: { model?: ModelRef }, call) => {
      const m = resolveModel(results(), r.model, 'model');
      cache.invalidate(m.folder);
      // Rename first so the model disappears at once; removing the files may take a while.
      const doomed = join(results(), m.dataset, `.deleting-${process.pid}-${Date.now()}`);
      if (existsSync(m.folder)) await rename(m.folder, doomed);
      await rm(doomed, { recursive: true, force: true });
      callLogger(ctx, call, 'DeleteModel').info({ event: 'model_deleted', model: `${m.dataset}/${m.trainer}__${m.plans}__${m.configuration}` }, 'model deleted');
      return {};
    }),
  };
}
