// nnunet.v1.DatasetService: raw datasets under nnUNet_raw. Handlers validate, call the dataset
// stage (dataset-files.ts, server/dataset) and translate errors. An upload is stored under a
// temporary name in its destination folder and renamed only after its SHA-256 matched and the
// NIfTI decoded (gzip is added or removed to match the dataset's file_ending).
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { datasetFolderName, findDataset, listDatasets, verifyDatasetIntegrity, type DatasetJson } from '../dataset/index.js';
import { readDatasetJsonFile } from '../dataset/dataset-json.js';
import { temporarySibling } from '../io/atomic.js';
import { decodeNifti } from '../io/nifti.js';
import { callLogger, type RpcContext } from './context.js';
import { caseFile, caseFiles, createDatasetFolder, datasetJsonProblems, describeDataset, labelsToJson, listDatasetInfos, recountTraining, withLock, type LabelDefinition, type Split } from './dataset-files.js';
import { clientStreaming, invalidArgument, notFound, RpcError, unary, unimplemented } from './errors.js';
import { receiveChunkedFile, type UploadMessage } from './upload.js';
import { checkDatasetRef, checkDeclaredSize, checkName } from './validate.js';

interface CreateDatasetRequest {
  id: number;
  name: string;
  channel_names: string[];
  labels: LabelDefinition[];
  regions_class_order: number[];
  file_ending: string;
  description: string;
}

interface UploadCaseHeader {
  dataset: string;
  case_id: string;
  channel: number;
  label: boolean;
  split: Split | 'CASE_SPLIT_UNSPECIFIED';
  size_bytes: number;
  overwrite: boolean;
}

const FILE_ENDINGS = ['.nii.gz', '.nii'];
const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/** The dataset's folder and parsed dataset.json; NOT_FOUND when absent, FAILED_PRECONDITION when broken. */
function openDataset(ctx: RpcContext, field: string, ref: string) {
  const loc = findDataset(checkDatasetRef(field, ref), ctx.config.roots.raw);
  const { json, problems } = readDatasetJsonFile(`${loc.folder}/dataset.json`);
  if (problems.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, `${loc.name}/dataset.json is invalid: ${problems.join('; ')}`, field);
  return { loc, json };
}

const splitOf = (s: string | undefined): Split => (s === 'CASE_SPLIT_TEST' ? 'CASE_SPLIT_TEST' : 'CASE_SPLIT_TRAINING');

function buildDatasetJson(r: CreateDatasetRequest): DatasetJson {
  if (!Number.isInteger(r.id) || r.id < 1 || r.id > 999) throw invalidArgument('id', `must be in 1..999, got ${r.id}`);
  checkName('name', r.name, 'dataset name');
  if (!r.channel_names?.length) throw invalidArgument('channel_names', 'at least one channel is required, e.g. ["CT"]');
  r.channel_names.forEach((c, i) => {
    if (!c || c.length > 100) throw invalidArgument(`channel_names[${i}]`, 'must be a non-empty name of at most 100 characters');
  });
  if (!r.labels?.length) throw invalidArgument('labels', 'labels are required, starting with {name: "background", values: [0]}');
  const names = new Set<string>();
  r.labels.forEach((l, i) => {
    if (!l.name || l.name.length > 100) throw invalidArgument(`labels[${i}].name`, 'must be a non-empty name of at most 100 characters');
    if (names.has(l.name)) throw invalidArgument(`labels[${i}].name`, `"${l.name}" appears twice`);
    names.add(l.name);
    if (!l.values?.length) throw invalidArgument(`labels[${i}].values`, 'a label needs one value (a region several)');
  });
  const fileEnding = r.file_ending || '.nii.gz';
  if (!FILE_ENDINGS.includes(fileEnding)) throw invalidArgument('file_ending', `must be one of ${FILE_ENDINGS.join(', ')}`);
  const json: DatasetJson = {
    channel_names: Object.fromEntries(r.channel_names.map((c, i) => [String(i), c])),
    labels: labelsToJson(r.labels),
    numTraining: 0,
    file_ending: fileEnding,
    name: r.name,
    description: r.description ?? '',
  };
  if (r.regions_class_order?.length) json.regions_class_order = r.regions_class_order;
  const problems = datasetJsonProblems(json);
  if (problems.length > 0) throw invalidArgument('labels', problems.join('; '));
  return json;
}

/** Decodes the uploaded bytes (proving they are a readable NIfTI) and matches gzip to the file ending. */
async function checkedNifti(ctx: RpcContext, tmpFile: string, fileEnding: string, shownAs: string): Promise<{ shape: number[]; spacing: number[] }> {
  let bytes: Uint8Array = await readFile(tmpFile);
  const image = decodeNifti(bytes, shownAs, { maxVoxels: ctx.config.maxVoxels });
  const wantGzip = fileEnding.endsWith('.gz');
  if (wantGzip !== isGzip(bytes)) {
    bytes = wantGzip ? gzipSync(bytes) : gunzipSync(bytes);
    await writeFile(tmpFile, bytes);
  }
  // NiftiImage holds (k, j, i); the API speaks NIfTI's (i, j, k).
  return { shape: [...image.shape].reverse(), spacing: [...image.spacing].reverse() };
}

export interface DatasetServiceHooks {
  /** PlanAndPreprocess needs the job store; the jobs module supplies its handler. */
  planAndPreprocess?: grpc.handleUnaryCall<unknown, unknown>;
  /**
   * The lock dataset.json writers take: the job store's (a PostgreSQL advisory lock when replicas
   * share a data root); by default an in-process one (withLock).
   */
  datasetLock?: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
}

export function datasetService(ctx: RpcContext, hooks: DatasetServiceHooks = {}): grpc.UntypedServiceImplementation {
  const raw = () => ctx.config.roots.raw;
  const lock = hooks.datasetLock ?? withLock;
  return {
    CreateDataset: unary(async (r: CreateDatasetRequest, call) => {
      const json = buildDatasetJson(r);
      const folderName = datasetFolderName(r.id, r.name);
      return lock(`create:${raw()}`, async () => {
        const taken = listDatasets(raw()).find((d) => d.id === r.id);
        if (taken) throw new RpcError(grpc.status.ALREADY_EXISTS, `dataset id ${r.id} is taken by ${taken.name}`, 'id');
        const folder = await createDatasetFolder(raw(), folderName, json);
        callLogger(ctx, call, 'CreateDataset').info({ event: 'dataset_created', dataset: folderName }, `created ${folderName}`);
        return { dataset: describeDataset({ id: r.id, name: folderName, folder, format: 'v2' }, true) };
      });
    }),

    UploadCase: clientStreaming(async (call: grpc.ServerReadableStream<UploadMessage<UploadCaseHeader>, unknown>) => {
      let destination: { file: string; relative: string; datasetFolder: string; fileEnding: string; header: UploadCaseHeader } | undefined;
      const received = await receiveChunkedFile(call, {
        method: 'UploadCase',
        metrics: ctx.metrics,
        onHeader: async (h: UploadCaseHeader) => {
          const { loc, json } = openDataset(ctx, 'header.dataset', h.dataset);
          const caseId = checkName('header.case_id', h.case_id, 'case id');
          const split = splitOf(h.split);
          const channels = Object.keys(json.channel_names).length;
          if (h.label && split === 'CASE_SPLIT_TEST') throw invalidArgument('header.label', 'test cases (imagesTs) have no labels');
          if (!h.label && (!Number.isInteger(h.channel) || h.channel < 0 || h.channel >= channels)) {
            throw invalidArgument('header.channel', `must be in 0..${channels - 1} (dataset.json has ${channels} channel(s)), got ${h.channel}`);
          }
          const sizeBytes = checkDeclaredSize('header.size_bytes', h.size_bytes, ctx.config.maxUploadBytes);
          const target = caseFile(loc.folder, json.file_ending, caseId, split, { label: h.label, channel: h.channel });
          if (existsSync(target.file) && !h.overwrite) throw new RpcError(grpc.status.ALREADY_EXISTS, `${loc.name}/${target.relative} exists; set overwrite to replace it`, 'header.case_id');
          destination = { ...target, datasetFolder: loc.folder, fileEnding: json.file_ending, header: h };
          return { value: h, sizeBytes, tmpFile: temporarySibling(target.file) };
        },
      });
      const d = destination!;
      try {
        const geometry = await checkedNifti(ctx, received.tmpFile, d.fileEnding, `${d.relative} (uploaded)`);
        await lock(d.datasetFolder, async () => {
          await rename(received.tmpFile, d.file);
          if (d.header.label || splitOf(d.header.split) === 'CASE_SPLIT_TRAINING') await recountTraining(d.datasetFolder);
        });
        callLogger(ctx, call, 'UploadCase').info({ event: 'case_uploaded', file: d.relative, bytes: received.sizeBytes }, `stored ${d.relative}`);
        return { case_id: d.header.case_id, path: d.relative, size_bytes: received.sizeBytes, sha256: received.sha256, ...geometry };
      } finally {
        await rm(received.tmpFile, { force: true });
      }
    }),

    ListDatasets: unary(async () => ({ datasets: listDatasetInfos(raw()) })),

    GetDataset: unary(async (r: { dataset: string }) => {
      const loc = findDataset(checkDatasetRef('dataset', r.dataset), raw());
      return { dataset: describeDataset(loc, true) };
    }),

    DeleteCase: unary(async (r: { dataset: string; case_id: string; split: string }, call) => {
      const { loc, json } = openDataset(ctx, 'dataset', r.dataset);
      const caseId = checkName('case_id', r.case_id, 'case id');
      const split = splitOf(r.split);
      return lock(loc.folder, async () => {
        const files = caseFiles(loc.folder, json.file_ending, caseId, split);
        if (files.length === 0) throw notFound(`case ${caseId} has no files in ${loc.name} (${split === 'CASE_SPLIT_TEST' ? 'imagesTs' : 'imagesTr/labelsTr'})`);
        for (const f of files) await rm(`${loc.folder}/${f}`, { force: true });
        if (split === 'CASE_SPLIT_TRAINING') await recountTraining(loc.folder);
        callLogger(ctx, call, 'DeleteCase').info({ event: 'case_deleted', dataset: loc.name, files }, `deleted case ${caseId} of ${loc.name}`);
        return { removed: files };
      });
    }),

    VerifyDataset: unary(async (r: { dataset: string }) => {
      const loc = findDataset(checkDatasetRef('dataset', r.dataset), raw());
      const report = await verifyDatasetIntegrity(loc.folder);
      const rel = (p: { file: string; reason: string }) => ({ file: relative(loc.folder, p.file) || '.', reason: p.reason });
      return { ok: report.ok, errors: report.errors.map(rel), warnings: report.warnings.map(rel), cases_checked: report.casesChecked };
    }),

    PlanAndPreprocess:
      hooks.planAndPreprocess ??
      unimplemented('PlanAndPreprocess runs as a job and the job store (server/jobs) is not wired into this server yet; run `nnunet plan_and_preprocess` meanwhile'),
  };
}
