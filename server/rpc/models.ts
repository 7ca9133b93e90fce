// nnunet.v1.ModelService: the model repository (nnUNet_results) as seen by clients: list with each
// model's state, describe, install from an uploaded zip (server/models/install.ts does the
// verified, atomic install), install from the pretrained catalog or a URL (server/models/
// pretrained.ts: download, SHA-256, then the same install), export as a zip, delete.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parseDatasetJson } from '../dataset/dataset-json.js';
import { catalogPath, CatalogError, loadCatalog } from '../models/catalog.js';
import { DownloadError } from '../models/download.js';
import { exportModelZip } from '../models/export.js';
import { installModelZip } from '../models/install.js';
import { installPretrained, listPretrained, PretrainedRequestError, type InstallProgressEvent } from '../models/pretrained.js';
import { inspectModel, listModels, type ModelFolder, type ModelInspection } from '../models/repository.js';
import { getConfiguration, loadPlansWithText } from '../planning/plans.js';
import { callLogger, type RpcContext } from './context.js';
import { CallCancelledError, clientStreaming, invalidArgument, notFound, RpcError, toServiceError, unary } from './errors.js';
import type { ModelCache } from './model-cache.js';
import { receiveChunkedFile, type UploadMessage } from './upload.js';
import { checkDatasetRef, checkDeclaredSize, checkFold, checkName, checkSha256 } from './validate.js';

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

function modelStatus(m: ModelFolder, cache: ModelCache) {
  const state = cache.folderState(m.folder);
  const inspection: ModelInspection = inspectModel(m, { loading: state === 'loading' });
  return {
    state: `MODEL_STATE_${inspection.state}`,
    state_reason: inspection.reason,
    folds: inspection.folds,
    channel_names: inspection.channelNames,
    labels: inspection.labels,
    loaded: state === 'loaded',
  };
}

/** Stage errors of a pretrained install as status codes a client can branch on. */
function pretrainedError(err: unknown): unknown {
  if (err instanceof PretrainedRequestError) {
    const code = /^no model ".*" in the pretrained catalog/.test(err.message) ? grpc.status.NOT_FOUND : /nnU-Net v1 model zip/.test(err.message) ? grpc.status.FAILED_PRECONDITION : grpc.status.INVALID_ARGUMENT;
    return new RpcError(code, err.message);
  }
  if (err instanceof CatalogError) {
    return new RpcError(/^no model ".*" in the pretrained catalog/.test(err.message) ? grpc.status.NOT_FOUND : grpc.status.FAILED_PRECONDITION, err.message);
  }
  if (err instanceof DownloadError) {
    const codes: Record<string, grpc.status> = {
      url: grpc.status.INVALID_ARGUMENT,
      'too-large': grpc.status.RESOURCE_EXHAUSTED,
      sha256: grpc.status.DATA_LOSS,
      'size-mismatch': grpc.status.DATA_LOSS,
      truncated: grpc.status.UNAVAILABLE,
      network: grpc.status.UNAVAILABLE,
      http: grpc.status.FAILED_PRECONDITION,
    };
    return new RpcError(codes[err.kind] ?? grpc.status.UNKNOWN, `download failed: ${err.message}`);
  }
  return err;
}

/** Writes one message of a server stream, waiting for 'drain' when the transport is full. */
async function send(call: grpc.ServerWritableStream<unknown, unknown>, message: object): Promise<void> {
  if (call.cancelled) throw new CallCancelledError();
  if (!call.write(message)) {
    await Promise.race([once(call, 'drain'), once(call, 'cancelled').then(() => Promise.reject(new CallCancelledError()))]);
  }
}

const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

async function describeModel(m: ModelFolder) {
  const datasetText = await readFile(join(m.folder, 'dataset.json'), 'utf8');
  const { json, problems } = parseDatasetJson(JSON.parse(datasetText));
  if (problems.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, `${m.dataset}/${m.trainer}__${m.plans}__${m.configuration}/dataset.json is invalid: ${problems.join('; ')}`);
  // Read once: parsed for the description, and returned as stored.
  const { plans, text: plansText } = await loadPlansWithText(join(m.folder, 'plans.json'));
  const configuration = getConfiguration(plans, m.configuration);
  return {
    model: publicModel(m),
    channel_names: Object.entries(json.channel_names).sort(([a], [b]) => Number(a) - Number(b)).map(([, n]) => n),
    labels: Object.entries(json.labels).map(([name, v]) => ({ name, values: Array.isArray(v) ? v : [v] })),
    patch_size: configuration.patch_size,
    spacing: configuration.spacing,
    file_ending: json.file_ending,
    dataset_json: datasetText,
    plans_json: plansText,
  };
}

interface InstallHeader {
  size_bytes: number;
  overwrite: boolean;
}

interface InstallPretrainedRequest {
  catalog_name?: string;
  url?: string;
  sha256?: string;
  overwrite?: boolean;
}

interface ExportRequest {
  dataset?: string;
  configurations?: string[];
  trainer?: string;
  plans?: string;
  folds?: string[];
  checkpoints?: string[];
}

export function modelService(ctx: RpcContext, cache: ModelCache): grpc.UntypedServiceImplementation {
  const results = () => ctx.config.roots.results;
  return {
    ListModels: unary(async (request: { dataset?: string }) => {
      const models = listModels(results(), request.dataset ? checkDatasetRef('dataset', request.dataset) : undefined);
      return { models: models.map(publicModel), statuses: models.map((m) => modelStatus(m, cache)) };
    }),

    GetModel: unary(async (r: { model?: ModelRef }) => {
      const m = resolveModel(results(), r.model, 'model');
      return { ...(await describeModel(m)), status: modelStatus(m, cache) };
    }),

    ListPretrainedModels: unary(async () => {
      let catalog;
      try {
        catalog = loadCatalog(catalogPath(ctx.config.catalogFile));
      } catch (err) {
        throw pretrainedError(err);
      }
      return {
        catalog_version: catalog.version,
        models: listPretrained(catalog, results()).map(({ entry, installed }) => ({
          name: entry.name,
          description: entry.description,
          dataset: entry.dataset,
          channels: entry.channels,
          labels: Object.entries(entry.labels ?? {}).map(([name, v]) => ({ name, values: Array.isArray(v) ? v : [v] })),
          licence: entry.licence,
          citation: entry.citation,
          urls: entry.urls,
          sha256: entry.sha256 ?? '',
          size_bytes: entry.size_bytes ?? 0,
          format: entry.format === 'nnunetv2_zip' ? 'PRETRAINED_FORMAT_NNUNETV2_ZIP' : 'PRETRAINED_FORMAT_NNUNETV1_ZIP',
          runnable: entry.runnable,
          installed: installed.map(publicModel),
          bundled: Boolean(entry.bundled),
        })),
      };
    }),

    InstallPretrainedModel: (call: grpc.ServerWritableStream<InstallPretrainedRequest, unknown>) => {
      const log = callLogger(ctx, call, 'InstallPretrainedModel');
      const abort = new AbortController();
      const onCancelled = () => abort.abort();
      call.once('cancelled', onCancelled);
      let lastSent = 0;
      let lastStage = '';
      const progress = (e: InstallProgressEvent) => {
        // byte counts at most every 250 ms; stage changes and messages always
        const now = Date.now();
        if (call.cancelled || (!e.message && e.stage === lastStage && now - lastSent < 250 && e.bytesDone !== e.bytesTotal)) return;
        lastSent = now;
        lastStage = e.stage;
        if (e.message) log.info({ event: 'install_progress', stage: e.stage }, e.message);
        call.write({ progress: { stage: e.stage, bytes_done: e.bytesDone, bytes_total: e.bytesTotal, message: e.message } });
      };
      void (async () => {
        const r = call.request;
        if (!r.catalog_name && !r.url) throw invalidArgument('source', 'give catalog_name or url');
        if (r.catalog_name) checkName('catalog_name', r.catalog_name);
        const sha256 = r.sha256 ? checkSha256('sha256', r.sha256) : undefined;
        await mkdir(ctx.config.tmpDir, { recursive: true });
        const result = await installPretrained(
          { catalogName: r.catalog_name || undefined, url: r.url || undefined, sha256 },
          {
            resultsRoot: results(),
            tmpDir: ctx.config.tmpDir,
            catalogFile: catalogPath(ctx.config.catalogFile),
            maxBytes: ctx.config.maxUploadBytes,
            overwrite: r.overwrite,
            onProgress: progress,
            signal: abort.signal,
          },
        ).catch((err: unknown) => {
          throw pretrainedError(err);
        });
        for (const m of result.installed) cache.invalidate(m.folder);
        const models = listModels(results()).filter((m) => result.installed.some((i) => i.folder === m.folder));
        log.info({ event: 'model_installed', url: result.url, sha256: result.sha256, resumes: result.resumes, models: result.installed.map((m) => `${m.dataset}/${m.model}`) }, `installed ${result.installed.length} model(s) from ${result.url}`);
        await send(call, { result: { models: models.map(publicModel), sha256: result.sha256, size_bytes: result.sizeBytes } });
        call.end();
      })()
        .catch((err: unknown) => {
          if (call.cancelled || err instanceof CallCancelledError) {
            log.info({ event: 'install_cancelled' }, 'client went away: install stopped, nothing installed');
            return;
          }
          call.emit('error', toServiceError(err));
        })
        .finally(() => call.removeListener('cancelled', onCancelled));
    },

    ExportModel: (call: grpc.ServerWritableStream<ExportRequest, unknown>) => {
      let dir: string | undefined;
      void (async () => {
        const r = call.request;
        const dataset = checkDatasetRef('dataset', r.dataset);
        const configurations = (r.configurations ?? []).map((c, i) => checkName(`configurations[${i}]`, c, 'configuration'));
        const folds = (r.folds ?? []).map((f, i) => checkFold(`folds[${i}]`, f));
        const checkpoints = (r.checkpoints ?? []).map((c, i) => {
          if (!CHECKPOINT_NAME.test(c)) throw invalidArgument(`checkpoints[${i}]`, 'must be a file name such as checkpoint_final.pth');
          return c;
        });
        await mkdir(ctx.config.tmpDir, { recursive: true });
        dir = await mkdtemp(join(ctx.config.tmpDir, 'nnunet-export-'));
        const zip = join(dir, 'model.zip');
        const plan = await exportModelZip(results(), zip, {
          dataset,
          configurations,
          trainer: r.trainer ? checkName('trainer', r.trainer, 'trainer') : undefined,
          plans: r.plans ? checkName('plans', r.plans, 'plans') : undefined,
          folds,
          checkpoints,
        });
        await send(call, { header: { size_bytes: statSync(zip).size, members: plan.files.map((f) => f.member), models: plan.models.map(publicModel) } });
        const hash = createHash('sha256');
        for await (const chunk of createReadStream(zip, { highWaterMark: ctx.config.chunkSizeBytes }) as AsyncIterable<Buffer>) {
          hash.update(chunk);
          await send(call, { chunk });
        }
        await send(call, { sha256: hash.digest('hex') });
        callLogger(ctx, call, 'ExportModel').info({ event: 'model_exported', models: plan.models.map((m) => `${m.dataset}/${m.trainer}__${m.plans}__${m.configuration}`), files: plan.files.length }, 'model exported');
      })().then(
        () => undefined,
        (err: unknown) => err ?? new Error('export failed'),
      )
        // The temporary zip is gone before the call ends, so a client never sees it left behind.
        .then(async (err) => {
          if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
          if (!err) call.end();
          else if (!call.cancelled && !(err instanceof CallCancelledError)) call.emit('error', toServiceError(err));
        });
    },

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
