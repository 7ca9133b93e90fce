// The input side of Predict: validating the header against the model and the limits (sizes are
// known before any byte arrives, so nothing is allocated for a request that will be refused),
// and spooling each channel's bytes to a file as they arrive. RAW voxels are turned into NIfTI
// files so that the predictor reads every input the same way.
import { open, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { readDatasetJsonFile } from '../dataset/dataset-json.js';
import { encodeNifti, type NiftiDatatype } from '../io/nifti.js';
import { datatypeByName, hostLittleEndian } from '../io/nifti-types.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';
import { invalidArgument, notFound, RpcError } from './errors.js';
import { resolveModel, type ModelRef } from './models.js';
import { checkDeclaredSize, checkFold } from './validate.js';
import type { ModelFolder } from '../models/repository.js';
import { DicomWebClient, DicomWebError } from '../dicomweb/client.js';
import type { DicomFile } from '../io/dicom/series.js';

export interface RawGeometry {
  shape: number[];
  spacing: number[];
  affine: number[];
  voxel_type: string;
}

export interface PredictHeader {
  model?: ModelRef | null;
  folds: string[];
  step_size: number;
  mirroring?: boolean;
  outputs: string[];
  input_format: string;
  channel_sizes_bytes: number[];
  raw_geometry?: RawGeometry | null;
  dicom_series_instance_uid?: string;
  dicomweb_series?: { url: string; study_instance_uid: string; series_instance_uid: string; store_seg: boolean } | null;
}

export interface VolumeChunk {
  channel: number;
  data: Buffer;
}

export interface PredictPlan {
  model: ModelFolder;
  /** As asked, else every fold_N of the model (not fold_all), as nnU-Net; explicit, so one cache entry serves both. */
  folds: string[];
  stepSize: number;
  mirroring: boolean;
  wantSegmentation: boolean;
  wantProbabilities: boolean;
  /** PREDICT_OUTPUT_DICOM_SEG (needs DICOM input). */
  wantDicomSeg: boolean;
  /** DICOM input: channel 0 is a zip of the series' Part 10 files. */
  dicom?: { seriesInstanceUID?: string };
  /** DICOM pulled from the configured PACS instead of received. */
  dicomweb?: { study: string; series: string; storeSeg: boolean };
  channelSizes: number[];
  raw?: { shape: [number, number, number]; spacing: [number, number, number]; affine: number[][]; datatype: NiftiDatatype };
}

const VOXEL_TYPES: Record<string, NiftiDatatype> = {
  VOXEL_TYPE_UINT8: 'uint8',
  VOXEL_TYPE_INT8: 'int8',
  VOXEL_TYPE_INT16: 'int16',
  VOXEL_TYPE_UINT16: 'uint16',
  VOXEL_TYPE_INT32: 'int32',
  VOXEL_TYPE_UINT32: 'uint32',
  VOXEL_TYPE_FLOAT32: 'float32',
  VOXEL_TYPE_FLOAT64: 'float64',
};

function planRaw(g: RawGeometry | null | undefined, channels: number, config: ServerConfig): NonNullable<PredictPlan['raw']> & { bytesPerChannel: number } {
  if (!g) throw invalidArgument('header.raw_geometry', 'RAW input needs the geometry (shape, spacing or affine, voxel_type)');
  if (g.shape.length !== 3 || !g.shape.every((n) => Number.isSafeInteger(n) && n > 0)) throw invalidArgument('header.raw_geometry.shape', `must be three positive sizes (i, j, k), got [${g.shape.join(', ')}]`);
  const datatype = VOXEL_TYPES[g.voxel_type];
  if (!datatype) throw invalidArgument('header.raw_geometry.voxel_type', `must be one of ${Object.keys(VOXEL_TYPES).join(', ')}`);
  const voxels = g.shape[0] * g.shape[1] * g.shape[2];
  if (voxels * channels > config.maxVoxels) {
    throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, `${voxels * channels} voxels (all channels), more than the limit of ${config.maxVoxels} (NNUNET_MAX_VOXELS)`, 'header.raw_geometry.shape');
  }
  let affine: number[][];
  if (g.affine.length === 16) affine = [0, 1, 2, 3].map((r) => g.affine.slice(r * 4, r * 4 + 4));
  else if (g.affine.length === 0) {
    if (g.spacing.length !== 3) throw invalidArgument('header.raw_geometry.spacing', 'give three spacings (mm) or a 16-value affine');
    affine = [
      [g.spacing[0], 0, 0, 0],
      [0, g.spacing[1], 0, 0],
      [0, 0, g.spacing[2], 0],
      [0, 0, 0, 1],
    ];
  } else throw invalidArgument('header.raw_geometry.affine', `must have 16 values (row-major 4x4), got ${g.affine.length}`);
  if (!affine.flat().every(Number.isFinite)) throw invalidArgument('header.raw_geometry.affine', 'must be finite numbers');
  const spacing = g.spacing.length === 3 ? g.spacing : [0, 1, 2].map((c) => Math.hypot(affine[0][c], affine[1][c], affine[2][c]));
  if (!spacing.every((s) => Number.isFinite(s) && s > 0)) throw invalidArgument('header.raw_geometry.spacing', 'spacings must be positive');
  const bytesPerChannel = voxels * datatypeByName(datatype).bytes;
  checkDeclaredSize('header.raw_geometry', bytesPerChannel, config.maxUploadBytes);
  // NiftiImage keeps (k, j, i); the API speaks (i, j, k).
  return { shape: [g.shape[2], g.shape[1], g.shape[0]], spacing: [spacing[2], spacing[1], spacing[0]], affine, datatype, bytesPerChannel };
}

const UID = /^[0-9]+(\.[0-9]+)*$/;

function planDicomWeb(ref: NonNullable<PredictHeader['dicomweb_series']>, sizes: number[], config: ServerConfig, wantSeg: boolean): NonNullable<PredictPlan['dicomweb']> {
  if (!config.dicomweb) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'the server has no PACS configured (NNUNET_DICOMWEB_URL); send the series as a zip instead', 'header.dicomweb_series');
  const normalise = (u: string) => u.replace(/\/+$/, '');
  if (ref.url && normalise(ref.url) !== normalise(config.dicomweb.url)) {
    throw new RpcError(grpc.status.PERMISSION_DENIED, 'the server pulls only from its configured PACS (NNUNET_DICOMWEB_URL); leave url empty or give that URL', 'header.dicomweb_series.url');
  }
  for (const [field, value] of [['study_instance_uid', ref.study_instance_uid], ['series_instance_uid', ref.series_instance_uid]] as const) {
    if (!UID.test(value) || value.length > 64) throw invalidArgument(`header.dicomweb_series.${field}`, `must be a DICOM UID (digits and dots, at most 64 characters), got "${value}"`);
  }
  if (sizes.length > 0) throw invalidArgument('header.channel_sizes_bytes', 'a DICOMweb series is pulled by the server: send no channel sizes and no chunks');
  if (ref.store_seg && !wantSeg) throw invalidArgument('header.dicomweb_series.store_seg', 'storing the SEG needs PREDICT_OUTPUT_DICOM_SEG in outputs');
  return { study: ref.study_instance_uid, series: ref.series_instance_uid, storeSeg: ref.store_seg };
}

/** DICOMweb failures as status codes: the PACS unreachable or refusing is not a bug of ours. */
function pacsError(err: unknown): unknown {
  if (!(err instanceof DicomWebError)) return err;
  const code =
    err.status === 0 || err.status >= 500 ? grpc.status.UNAVAILABLE : err.status === 404 ? grpc.status.NOT_FOUND : err.status === 401 || err.status === 403 ? grpc.status.FAILED_PRECONDITION : grpc.status.FAILED_PRECONDITION;
  return new RpcError(code, `PACS: ${err.message}`, 'header.dicomweb_series');
}

/** Pulls the planned series from the configured PACS (WADO-RS). */
export async function pullDicomWebSeries(plan: PredictPlan, config: ServerConfig): Promise<DicomFile[]> {
  const ref = plan.dicomweb!;
  try {
    const files = await new DicomWebClient(config.dicomweb!).retrieveSeries(ref.study, ref.series);
    if (files.length === 0) throw new RpcError(grpc.status.NOT_FOUND, `series ${ref.series} of study ${ref.study} has no instances in the PACS`, 'header.dicomweb_series');
    return files;
  } catch (err) {
    throw pacsError(err);
  }
}

/** Stores a SEG into the planned series' study (STOW-RS). */
export async function storeDicomWebSeg(plan: PredictPlan, config: ServerConfig, seg: Uint8Array): Promise<void> {
  try {
    await new DicomWebClient(config.dicomweb!).store(plan.dicomweb!.study, [seg]);
  } catch (err) {
    throw pacsError(err);
  }
}

/** Validates a Predict header; INVALID_ARGUMENT naming the field, NOT_FOUND, RESOURCE_EXHAUSTED. */
export function planPredict(h: PredictHeader, config: ServerConfig): PredictPlan {
  const model = resolveModel(config.roots.results, h.model, 'header.model');
  const folds = h.folds.length > 0 ? h.folds.map((f, i) => checkFold(`header.folds[${i}]`, f)) : undefined;
  for (const f of folds ?? []) if (!model.folds.includes(f)) throw notFound(`fold ${f} of model ${model.dataset}/${model.trainer}__${model.plans}__${model.configuration} does not exist (available: ${model.folds.join(', ') || 'none'})`);
  if (!folds && !model.folds.some((f) => f !== 'all')) {
    throw new RpcError(grpc.status.FAILED_PRECONDITION, `the model has no fold_N folder (only: ${model.folds.join(', ') || 'none'}); pass folds, e.g. ["all"]`, 'header.folds');
  }
  const stepSize = h.step_size === 0 ? 0.5 : h.step_size;
  if (!(stepSize > 0 && stepSize <= 1)) throw invalidArgument('header.step_size', `must be in (0, 1], got ${h.step_size}`);
  const unknown = h.outputs.find((o) => o !== 'PREDICT_OUTPUT_SEGMENTATION' && o !== 'PREDICT_OUTPUT_PROBABILITIES' && o !== 'PREDICT_OUTPUT_DICOM_SEG');
  if (unknown) throw invalidArgument('header.outputs', `unknown output ${unknown}`);
  const { json, problems } = readDatasetJsonFile(join(model.folder, 'dataset.json'));
  if (problems.length > 0) throw new RpcError(grpc.status.FAILED_PRECONDITION, `the model's dataset.json is invalid: ${problems.join('; ')}`, 'header.model');
  const channels = Object.keys(json.channel_names).length;
  const plan: PredictPlan = {
    model,
    folds: folds ?? model.folds.filter((f) => f !== 'all'),
    stepSize,
    mirroring: h.mirroring ?? true,
    wantSegmentation: h.outputs.length === 0 || h.outputs.includes('PREDICT_OUTPUT_SEGMENTATION'),
    wantProbabilities: h.outputs.includes('PREDICT_OUTPUT_PROBABILITIES'),
    wantDicomSeg: h.outputs.includes('PREDICT_OUTPUT_DICOM_SEG'),
    channelSizes: [],
  };
  if (plan.wantDicomSeg && h.input_format !== 'INPUT_FORMAT_DICOM') throw invalidArgument('header.outputs', 'PREDICT_OUTPUT_DICOM_SEG needs DICOM input (input_format INPUT_FORMAT_DICOM): a SEG references its source series');
  if (plan.wantDicomSeg) {
    const region = Object.entries(json.labels).find(([, v]) => Array.isArray(v));
    if (region) throw new RpcError(grpc.status.FAILED_PRECONDITION, `the model is region-based (label "${region[0]}"); PREDICT_OUTPUT_DICOM_SEG supports plain labels only`, 'header.outputs');
  }
  if (h.input_format === 'INPUT_FORMAT_RAW') {
    const raw = planRaw(h.raw_geometry, channels, config);
    if (h.channel_sizes_bytes.length > 0 && h.channel_sizes_bytes.some((n) => n !== raw.bytesPerChannel)) {
      throw invalidArgument('header.channel_sizes_bytes', `RAW channels of this geometry have ${raw.bytesPerChannel} bytes each`);
    }
    plan.raw = raw;
    plan.channelSizes = Array<number>(channels).fill(raw.bytesPerChannel);
  } else if (h.input_format === 'INPUT_FORMAT_DICOM') {
    if (channels !== 1) throw new RpcError(grpc.status.FAILED_PRECONDITION, `DICOM input feeds one channel; the model takes ${channels} (${Object.values(json.channel_names).join(', ')})`, 'header.input_format');
    if (h.dicomweb_series?.study_instance_uid || h.dicomweb_series?.series_instance_uid) {
      plan.dicomweb = planDicomWeb(h.dicomweb_series, h.channel_sizes_bytes, config, plan.wantDicomSeg);
      plan.dicom = { seriesInstanceUID: plan.dicomweb.series };
      return plan;
    }
    if (h.channel_sizes_bytes.length !== 1) throw invalidArgument('header.channel_sizes_bytes', `DICOM input is one zip of the series' files: give its size, got ${h.channel_sizes_bytes.length} size(s)`);
    plan.channelSizes = [checkDeclaredSize('header.channel_sizes_bytes[0]', h.channel_sizes_bytes[0], config.maxUploadBytes)];
    plan.dicom = { seriesInstanceUID: h.dicom_series_instance_uid || undefined };
  } else {
    if (h.channel_sizes_bytes.length !== channels) {
      throw invalidArgument('header.channel_sizes_bytes', `the model takes ${channels} channel(s) (${Object.values(json.channel_names).join(', ')}); give one size per channel file, got ${h.channel_sizes_bytes.length}`);
    }
    plan.channelSizes = h.channel_sizes_bytes.map((n, i) => checkDeclaredSize(`header.channel_sizes_bytes[${i}]`, n, config.maxUploadBytes));
  }
  return plan;
}

/** Writes the chunks of each channel, in order, to `dir`; returns NIfTI files, one per channel. */
export async function spoolChannels(
  next: () => Promise<IteratorResult<{ payload?: string; chunk?: VolumeChunk | null }>>,
  plan: PredictPlan,
  dir: string,
  metrics: ServerMetrics,
): Promise<string[]> {
  const sizes = plan.channelSizes;
  const received = sizes.map(() => 0);
  const files = sizes.map((_, i) => join(dir, plan.raw ? `channel_${i}.raw` : plan.dicom ? `channel_${i}.zip` : `channel_${i}.nii.gz`));
  let current = -1;
  let handle: FileHandle | undefined;
  try {
    for (;;) {
      const step = await next();
      if (step.done) break;
      const msg = step.value;
      if (msg.payload !== 'chunk' || !msg.chunk) throw invalidArgument('header', 'only the first message may be a header; then volume chunks');
      const { channel, data } = msg.chunk;
      if (channel !== current) {
        if (channel !== current + 1 || channel >= sizes.length) throw invalidArgument('chunk.channel', `channels are sent in order 0..${sizes.length - 1}; got ${channel} after ${current}`);
        if (current >= 0 && received[current] !== sizes[current]) throw invalidArgument('chunk.channel', `channel ${current} ended after ${received[current]} of ${sizes[current]} bytes`);
        await handle?.close();
        current = channel;
        handle = await open(files[current], 'wx');
      }
      received[current] += data.length;
      metrics.receivedBytes.inc({ grpc_method: 'Predict' }, data.length);
      if (received[current] > sizes[current]) throw new RpcError(grpc.status.OUT_OF_RANGE, `channel ${current}: more bytes (${received[current]}) than declared (${sizes[current]})`, 'chunk.data');
      await handle!.write(data);
    }
  } finally {
    await handle?.close();
  }
  const short = received.findIndex((n, i) => n !== sizes[i]);
  if (short >= 0) throw invalidArgument('chunk', `channel ${short}: received ${received[short]} of ${sizes[short]} bytes before the stream ended`);
  if (!plan.raw) return files;
  return Promise.all(files.map((f, i) => rawToNifti(f, join(dir, `channel_${i}.nii`), plan.raw!)));
}

async function rawToNifti(rawFile: string, niftiFile: string, raw: NonNullable<PredictPlan['raw']>): Promise<string> {
  const bytes = await readFile(rawFile);
  const info = datatypeByName(raw.datatype);
  // The wire format is little-endian; copy into an aligned buffer of the type.
  const buffer = new ArrayBuffer(bytes.length);
  new Uint8Array(buffer).set(bytes);
  if (!hostLittleEndian) throw new RpcError(grpc.status.UNIMPLEMENTED, 'RAW input on a big-endian server host is not supported');
  const data = new info.array(buffer, 0, bytes.length / info.bytes);
  await writeFile(niftiFile, encodeNifti({ data, shape: raw.shape, channels: 1, spacing: raw.spacing, affine: raw.affine }, { datatype: raw.datatype }, false, niftiFile));
  return niftiFile;
}
