// The typed TypeScript client of nnunet-server, over the same protos/ the server loads. Every
// method returns a promise (or streams through a callback) and fails with the server's
// grpc.ServiceError (code, details, metadata such as nnunet-error-field), so callers (the CLI,
// PACS bridges) branch on status codes. Files are streamed in chunks with SHA-256 both ways.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { zipSync } from 'fflate';
import { nnunetV1 } from '../../server/rpc/protos.js';
import { MemoryOutput, OutputFile, sendFileChunks, uploadFile, writeWithBackpressure, type OutputSink, type TransferProgress } from './transfer.js';
import type {
  ExportModelHeader,
  ExportModelRequest,
  InstallPretrainedRequest,
  InstallPretrainedResult,
  InstallProgress,
  ModelStatus,
  PretrainedModel,
  CaseSplit,
  CreateDatasetRequest,
  Dataset,
  FindBestConfigurationRequest,
  Job,
  JobEvent,
  Model,
  ModelDetails,
  ModelRef,
  PlanAndPreprocessRequest,
  PredictGeometry,
  PredictProgress,
  PredictSummary,
  ServerInfo,
  TrainFoldRequest,
  UploadedFile,
  VerifyReport,
} from './types.js';

export type * from './types.js';
export { FINAL_JOB_STATES } from './types.js';
export type { TransferProgress } from './transfer.js';

export interface ClientOptions {
  /** host:port */
  address: string;
  /** Bearer token (sent as `authorization: Bearer <token>`). */
  token?: string;
  /** TLS: true for the system roots, or PEM buffers (cert + key for mTLS). */
  tls?: boolean | { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Upload chunk size (default 1 MiB: far below the 4 MiB default message limit). */
  chunkSizeBytes?: number;
  channelOptions?: grpc.ChannelOptions;
}

export interface PredictFileOptions {
  model: ModelRef;
  folds?: string[];
  /** Test-time mirroring; nnU-Net's default (on) when undefined. */
  mirroring?: boolean;
  stepSize?: number;
  /** Also write the probabilities (.npz) here. */
  probabilitiesFile?: string;
  onProgress?: (p: PredictProgress) => void;
  /** Bytes of the input files sent so far (all channels together). */
  onUploadProgress?: TransferProgress;
  /** Aborting cancels the call; the server stops the work. */
  signal?: AbortSignal;
  deadline?: grpc.Deadline;
}

/** Voxels in memory for Predict's RAW input: NIfTI axis order (i fastest), one array per channel. */
export interface RawVolume {
  channels: (Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array)[];
  /** (i, j, k) */
  shape: [number, number, number];
  /** mm, (i, j, k); optional when `affine` is given. */
  spacing?: [number, number, number];
  /** 4x4 voxel → world (RAS+ mm); diag(spacing) when absent. */
  affine?: number[][];
}

const VOXEL_TYPES: Record<string, string> = {
  Uint8Array: 'VOXEL_TYPE_UINT8',
  Int8Array: 'VOXEL_TYPE_INT8',
  Int16Array: 'VOXEL_TYPE_INT16',
  Uint16Array: 'VOXEL_TYPE_UINT16',
  Int32Array: 'VOXEL_TYPE_INT32',
  Uint32Array: 'VOXEL_TYPE_UINT32',
  Float32Array: 'VOXEL_TYPE_FLOAT32',
  Float64Array: 'VOXEL_TYPE_FLOAT64',
};

export interface PredictResult {
  geometry: PredictGeometry;
  summary: PredictSummary;
}

type Unary = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

const DEFAULT_CHUNK = 1024 * 1024;

/** A DICOM series for Predict: its Part 10 files, as bytes. */
export interface DicomFileBytes {
  bytes: Uint8Array;
}

export interface PredictDicomOptions {
  model: ModelRef;
  folds?: string[];
  mirroring?: boolean;
  /** The series' files; or instead `dicomweb`, a series the server pulls from its own PACS. */
  files?: DicomFileBytes[];
  dicomweb?: { url?: string; study: string; series: string; storeSeg?: boolean };
  /** Which series, when the files hold several. */
  seriesInstanceUID?: string;
  onProgress?: (p: PredictProgress) => void;
  signal?: AbortSignal;
}

export interface PredictDicomResult {
  seg: Buffer;
  sopInstanceUID: string;
  seriesInstanceUID: string;
  geometry: PredictGeometry;
  /** The server stored the SEG into its PACS (dicomweb.storeSeg). */
  stored: boolean;
}

/** Output sinks of one Predict call, by output; only those given are asked for. */
interface PredictSinks {
  segmentation?: OutputSink;
  probabilities?: OutputSink;
  dicomSeg?: OutputSink;
}

/** Each Predict output: its sink, and where the geometry and summary announce its size and SHA-256. */
const PREDICT_OUTPUTS: { output: string; sink: keyof PredictSinks; size: keyof PredictGeometry; sha256: 'segmentation_sha256' | 'probabilities_sha256' | 'dicom_seg_sha256' }[] = [
  { output: 'PREDICT_OUTPUT_SEGMENTATION', sink: 'segmentation', size: 'segmentation_size_bytes', sha256: 'segmentation_sha256' },
  { output: 'PREDICT_OUTPUT_PROBABILITIES', sink: 'probabilities', size: 'probabilities_size_bytes', sha256: 'probabilities_sha256' },
  { output: 'PREDICT_OUTPUT_DICOM_SEG', sink: 'dicomSeg', size: 'dicom_seg_size_bytes', sha256: 'dicom_seg_sha256' },
];

/** The series' files as one zip (stored, not deflated: pixel data is often compressed already), entries 00000.dcm, 00001.dcm, ... */
export function zipDicomFiles(files: DicomFileBytes[]): Uint8Array {
  const entries: Record<string, [Uint8Array, { level: 0 }]> = {};
  files.forEach((f, i) => (entries[`${String(i).padStart(5, '0')}.dcm`] = [f.bytes, { level: 0 }]));
  return zipSync(entries);
}

export class NnunetClient {
  private readonly clients: Record<string, grpc.Client> = {};
  private readonly chunkSize: number;

  constructor(private readonly options: ClientOptions) {
    this.chunkSize = options.chunkSizeBytes ?? DEFAULT_CHUNK;
    const tls = options.tls;
    const credentials = !tls
      ? grpc.credentials.createInsecure()
      : tls === true
        ? grpc.credentials.createSsl()
        : grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
    const v1 = nnunetV1();
    const channelOptions = { 'grpc.max_receive_message_length': 16 * 1024 * 1024, ...options.channelOptions };
    let channelOverride: grpc.Channel | undefined;
    for (const name of ['ServerService', 'ModelService', 'DatasetService', 'InferenceService', 'TrainingService']) {
      const Ctor = v1[name] as grpc.ServiceClientConstructor;
      // One HTTP/2 connection for all services.
      const client: grpc.Client = new Ctor(options.address, credentials, { ...channelOptions, channelOverride });
      channelOverride ??= client.getChannel() as grpc.Channel;
      this.clients[name] = client;
    }
  }

  close(): void {
    this.clients.ServerService.close();
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.options.token) md.set('authorization', `Bearer ${this.options.token}`);
    return md;
  }

  private method<T extends object>(service: string, name: string): T {
    const client = this.clients[service] as unknown as Record<string, (...args: unknown[]) => unknown>;
    return client[name].bind(client) as unknown as T;
  }

  private unary<Res>(service: string, name: string, request: object, options: grpc.CallOptions = {}): Promise<Res> {
    const fn = this.method<Unary>(service, name);
    return new Promise((resolve, reject) => {
      fn(request, this.metadata(), options, (err, res) => (err ? reject(err) : resolve(res as Res)));
    });
  }

  /** Also the connectivity check: give a deadline to fail fast when nothing answers. */
  serverInfo(options: grpc.CallOptions = {}): Promise<ServerInfo> {
    return this.unary('ServerService', 'GetServerInfo', {}, options);
  }

  async listModels(dataset = ''): Promise<Model[]> {
    return (await this.unary<{ models: Model[] }>('ModelService', 'ListModels', { dataset })).models;
  }

  getModel(model: ModelRef): Promise<ModelDetails> {
    return this.unary('ModelService', 'GetModel', { model });
  }

  async deleteModel(model: ModelRef): Promise<void> {
    await this.unary('ModelService', 'DeleteModel', { model });
  }

  /** Installs a model zip (nnU-Net v2 export or ours); returns the model folders it held. */
  async installModel(zipFile: string, o: { overwrite?: boolean; onUploadProgress?: TransferProgress } = {}): Promise<Model[]> {
    const start = this.method<(md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: { models: Model[] }) => void) => grpc.ClientWritableStream<object>>('ModelService', 'InstallModel');
    const res = await uploadFile<{ models: Model[] }>((cb) => start(this.metadata(), cb), { overwrite: o.overwrite ?? false }, zipFile, this.chunkSize, o.onUploadProgress);
    return res.models;
  }

  async createDataset(request: CreateDatasetRequest): Promise<Dataset> {
    return (await this.unary<{ dataset: Dataset }>('DatasetService', 'CreateDataset', request)).dataset;
  }

  async listDatasets(): Promise<Dataset[]> {
    return (await this.unary<{ datasets: Dataset[] }>('DatasetService', 'ListDatasets', {})).datasets;
  }

  async getDataset(dataset: string): Promise<Dataset> {
    return (await this.unary<{ dataset: Dataset }>('DatasetService', 'GetDataset', { dataset })).dataset;
  }

  async deleteCase(dataset: string, caseId: string, split: CaseSplit = 'CASE_SPLIT_TRAINING'): Promise<string[]> {
    return (await this.unary<{ removed: string[] }>('DatasetService', 'DeleteCase', { dataset, case_id: caseId, split })).removed;
  }

  verifyDataset(dataset: string): Promise<VerifyReport> {
    return this.unary('DatasetService', 'VerifyDataset', { dataset });
  }

  /** Starts fingerprint + planning + preprocessing as a job; follow it with waitForJob or watchJob. */
  async planAndPreprocess(request: PlanAndPreprocessRequest): Promise<Job> {
    return (await this.unary<{ job: Job }>('DatasetService', 'PlanAndPreprocess', request)).job;
  }

  /** Uploads one file of a case (a channel, or the label). */
  uploadCaseFile(dataset: string, caseId: string, file: string, target: { channel?: number; label?: boolean; split?: CaseSplit; overwrite?: boolean }): Promise<UploadedFile> {
    const start = this.method<(md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: UploadedFile) => void) => grpc.ClientWritableStream<object>>('DatasetService', 'UploadCase');
    const header = { dataset, case_id: caseId, channel: target.channel ?? 0, label: target.label ?? false, split: target.split ?? 'CASE_SPLIT_TRAINING', overwrite: target.overwrite ?? false };
    return uploadFile((cb) => start(this.metadata(), cb), header, file, this.chunkSize);
  }

  /** Uploads a case: its channel files in channel order and, for training cases, the label. */
  async uploadCase(dataset: string, caseId: string, channelFiles: string[], labelFile?: string, o: { split?: CaseSplit; overwrite?: boolean } = {}): Promise<UploadedFile[]> {
    const done: UploadedFile[] = [];
    for (const [channel, file] of channelFiles.entries()) done.push(await this.uploadCaseFile(dataset, caseId, file, { channel, split: o.split, overwrite: o.overwrite }));
    if (labelFile) done.push(await this.uploadCaseFile(dataset, caseId, labelFile, { label: true, overwrite: o.overwrite }));
    return done;
  }

  /**
   * Uploads a folder in nnU-Net's raw layout (imagesTr/CASE_XXXX{ending}, labelsTr/CASE{ending},
   * imagesTs/...) into an existing dataset; returns the case ids uploaded.
   */
  async uploadFolder(dataset: string, folder: string, o: { fileEnding?: string; overwrite?: boolean; onCase?: (caseId: string) => void } = {}): Promise<string[]> {
    const ending = o.fileEnding ?? '.nii.gz';
    const list = (sub: string) => {
      try {
        return readdirSync(join(folder, sub)).filter((f) => f.endsWith(ending) && statSync(join(folder, sub, f)).isFile());
      } catch {
        return [];
      }
    };
    const uploaded: string[] = [];
    for (const [sub, split] of [['imagesTr', 'CASE_SPLIT_TRAINING'], ['imagesTs', 'CASE_SPLIT_TEST']] as const) {
      const files = list(sub).sort();
      const ids = [...new Set(files.map((f) => f.slice(0, -ending.length - 5)))];
      const labels = new Set(list('labelsTr'));
      for (const id of ids) {
        const channels = files.filter((f) => f.length === id.length + 5 + ending.length && f.startsWith(`${id}_`)).map((f) => join(folder, sub, f));
        const label = split === 'CASE_SPLIT_TRAINING' && labels.has(id + ending) ? join(folder, 'labelsTr', id + ending) : undefined;
        await this.uploadCase(dataset, id, channels, label, { split, overwrite: o.overwrite });
        o.onCase?.(id);
        uploaded.push(id);
      }
    }
    return uploaded;
  }

  /**
   * Segments one case given as NIfTI files (one per channel): streams them in, writes the
   * segmentation to `outputFile` (and the probabilities when asked) once complete and checksummed.
   */
  async predictFile(inputFiles: string[], outputFile: string, o: PredictFileOptions): Promise<PredictResult> {
    const segmentation = new OutputFile(outputFile);
    const probabilities = o.probabilitiesFile ? new OutputFile(o.probabilitiesFile) : undefined;
    const sizes = inputFiles.map((f) => statSync(f).size);
    const header = { input_format: 'INPUT_FORMAT_NIFTI', channel_sizes_bytes: sizes };
    const total = sizes.reduce((a, b) => a + b, 0);
    return this.predictStream(header, { segmentation, probabilities }, o, async (call) => {
      let before = 0;
      for (const [channel, file] of inputFiles.entries()) {
        const progress = o.onUploadProgress && ((sent: number) => o.onUploadProgress!(before + sent, total));
        await sendFileChunks(call, file, this.chunkSize, (data) => ({ chunk: { channel, data } }), progress);
        before += sizes[channel];
      }
    });
  }

  /**
   * Segments voxels already in memory (e.g. decoded from DICOM by a PACS bridge): one typed array per
   * channel in NIfTI order (i fastest), shape (i, j, k). Returns the .nii.gz (and .npz) bytes.
   */
  async predictVolume(volume: RawVolume, o: Omit<PredictFileOptions, 'probabilitiesFile'> & { probabilities?: boolean }): Promise<PredictResult & { segmentation: Buffer; probabilities?: Buffer }> {
    const segmentation = new MemoryOutput();
    const probabilities = o.probabilities ? new MemoryOutput() : undefined;
    const header = {
      input_format: 'INPUT_FORMAT_RAW',
      raw_geometry: { shape: volume.shape, spacing: volume.spacing ?? [], affine: volume.affine?.flat() ?? [], voxel_type: VOXEL_TYPES[volume.channels[0].constructor.name] },
    };
    const result = await this.predictStream(header, { segmentation, probabilities }, o, async (call) => {
      for (const [channel, array] of volume.channels.entries()) {
        const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
        for (let offset = 0; offset < bytes.length; offset += this.chunkSize) {
          await writeWithBackpressure(call, { chunk: { channel, data: bytes.subarray(offset, offset + this.chunkSize) } });
        }
      }
    });
    return { ...result, segmentation: segmentation.bytes(), probabilities: probabilities?.bytes() };
  }

  /**
   * The Predict exchange: header, input, then progress, geometry, output chunks and summary. The
   * outputs asked for are the sinks given; each is committed with the size and SHA-256 the server
   * announced for it, and all are discarded when the call fails.
   */
  private async predictStream(input: object, sinks: PredictSinks, o: PredictFileOptions, sendInput: (call: grpc.ClientDuplexStream<object, PredictResponseMessage>) => Promise<void>): Promise<PredictResult> {
    const wanted = PREDICT_OUTPUTS.filter((p) => sinks[p.sink]);
    const start = this.method<(md: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientDuplexStream<object, PredictResponseMessage>>('InferenceService', 'Predict');
    const call = start(this.metadata(), o.deadline ? { deadline: o.deadline } : {});
    const abort = () => call.cancel();
    o.signal?.addEventListener('abort', abort, { once: true });
    const sending = (async () => {
      const header = {
        model: o.model,
        folds: o.folds ?? [],
        step_size: o.stepSize ?? 0,
        mirroring: o.mirroring,
        outputs: wanted.map((p) => p.output),
        ...input,
      };
      await writeWithBackpressure(call, { header });
      await sendInput(call);
      call.end();
    })();
    // A refused header ends the call while we still send: the status read below reports it.
    sending.catch(() => {});
    try {
      let geometry: PredictGeometry | undefined;
      let summary: PredictSummary | undefined;
      for await (const message of call as AsyncIterable<PredictResponseMessage>) {
        if (message.progress) o.onProgress?.(message.progress);
        else if (message.geometry) geometry = message.geometry;
        else if (message.chunk) {
          const output = message.chunk.output;
          const target = wanted.find((p) => p.output === output);
          if (!target) throw new Error(`the server sent ${output}, which was not asked for`);
          await sinks[target.sink]!.write(message.chunk.offset, message.chunk.data);
        } else if (message.summary) summary = message.summary;
      }
      await sending;
      if (!geometry || !summary) throw new Error('the Predict stream ended without geometry and summary');
      for (const p of wanted) await sinks[p.sink]!.commit(Number(geometry[p.size]), summary[p.sha256]);
      return { geometry, summary };
    } catch (err) {
      for (const p of wanted) await sinks[p.sink]!.discard();
      throw err;
    } finally {
      o.signal?.removeEventListener('abort', abort);
    }
  }

  getJob(jobId: string): Promise<Job> {
    return this.unary<{ job: Job }>('TrainingService', 'GetJob', { job_id: jobId }).then((r) => r.job);
  }

  cancelJob(jobId: string): Promise<Job> {
    return this.unary<{ job: Job }>('TrainingService', 'CancelJob', { job_id: jobId }).then((r) => r.job);
  }

  listJobs(filter: { kind?: string; state?: string; page_size?: number; page_token?: string } = {}): Promise<{ jobs: Job[]; next_page_token: string }> {
    return this.unary('TrainingService', 'ListJobs', filter);
  }

  /**
   * Trains a fold (TrainingService.TrainFold): the job's events, the first (QUEUED) one carrying
   * the job id, until the job ends; breaking out of the loop or aborting `signal` only stops
   * following it (CancelJob stops the job).
   */
  trainFold(request: TrainFoldRequest, o: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const start = this.method<(req: object, md: grpc.Metadata) => grpc.ClientReadableStream<{ event: JobEvent }>>('TrainingService', 'TrainFold');
    return this.eventStream(start(request, this.metadata()), o.signal);
  }

  /** Events of a job (stored ones after `afterSequence`, then live ones) until it ends. */
  jobEvents(jobId: string, o: { afterSequence?: number; signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const start = this.method<(req: object, md: grpc.Metadata) => grpc.ClientReadableStream<{ event: JobEvent }>>('TrainingService', 'WatchJob');
    return this.eventStream(start({ job_id: jobId, after_sequence: o.afterSequence ?? 0 }, this.metadata()), o.signal);
  }

  private async *eventStream(call: grpc.ClientReadableStream<{ event: JobEvent }>, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    const abort = () => call.cancel();
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      for await (const message of call as AsyncIterable<{ event: JobEvent }>) yield message.event;
    } finally {
      signal?.removeEventListener('abort', abort);
      // Leaving early (break, throw) ends the call; a finished call ignores this.
      call.cancel();
    }
  }

  /** Starts FindBestConfiguration as a job; follow it with waitForJob. */
  async findBestConfiguration(request: FindBestConfigurationRequest): Promise<Job> {
    return (await this.unary<{ job: Job }>('TrainingService', 'FindBestConfiguration', request)).job;
  }

  /** Follows a job to its end, passing each event to `onEvent`; resolves with the final Job (state, error, result_json). */
  async waitForJob(jobId: string, onEvent: (event: JobEvent) => void = () => {}, o: { signal?: AbortSignal } = {}): Promise<Job> {
    for await (const event of this.jobEvents(jobId, o)) onEvent(event);
    return this.getJob(jobId);
  }

  /** Follows a job's events until it ends (or `signal` aborts); resolves with the last event. */
  watchJob(jobId: string, onEvent: (event: JobEvent) => void, o: { afterSequence?: number; signal?: AbortSignal } = {}): Promise<JobEvent | undefined> {
    const start = this.method<(req: object, md: grpc.Metadata) => grpc.ClientReadableStream<{ event: JobEvent }>>('TrainingService', 'WatchJob');
    const call = start({ job_id: jobId, after_sequence: o.afterSequence ?? 0 }, this.metadata());
    const abort = () => call.cancel();
    o.signal?.addEventListener('abort', abort, { once: true });
    return (async () => {
      let last: JobEvent | undefined;
      try {
        for await (const message of call as AsyncIterable<{ event: JobEvent }>) {
          last = message.event;
          onEvent(message.event);
        }
        return last;
      } finally {
        o.signal?.removeEventListener('abort', abort);
      }
    })();
  }
  // ---- DICOM: a series in, a DICOM SEG out (InferenceService.Predict) ----

  /**
   * Segments a DICOM series: the Part 10 files go up as one zip (INPUT_FORMAT_DICOM), or the server
   * pulls the series from its own DICOMweb PACS (`dicomweb`, optionally storing the SEG back); the
   * DICOM SEG comes back, its SHA-256 checked.
   */
  async predictDicom(o: PredictDicomOptions): Promise<PredictDicomResult> {
    const seg = new MemoryOutput();
    const zip = o.files ? zipDicomFiles(o.files) : new Uint8Array(0);
    const header = {
      input_format: 'INPUT_FORMAT_DICOM',
      channel_sizes_bytes: o.files ? [zip.length] : [],
      dicom_series_instance_uid: o.seriesInstanceUID ?? '',
      dicomweb_series: o.dicomweb ? { url: o.dicomweb.url ?? '', study_instance_uid: o.dicomweb.study, series_instance_uid: o.dicomweb.series, store_seg: o.dicomweb.storeSeg ?? false } : null,
    };
    const { geometry, summary } = await this.predictStream(header, { dicomSeg: seg }, { ...o, mirroring: o.mirroring ?? true }, async (call) => {
      for (let at = 0; at < zip.length; at += this.chunkSize) await writeWithBackpressure(call, { chunk: { channel: 0, data: Buffer.from(zip.subarray(at, at + this.chunkSize)) } });
    });
    return { seg: seg.bytes(), sopInstanceUID: summary.dicom_seg_sop_instance_uid, seriesInstanceUID: summary.dicom_seg_series_instance_uid, geometry, stored: summary.dicom_seg_stored };
  }

  // ---- Pretrained catalog, installs from it or a URL, export (ModelService) ----

  /** Every installed model with its state (READY / LOADING / FAILED and why), per-fold networks, and whether it is loaded. */
  async listModelStatuses(dataset = ''): Promise<{ model: Model; status: ModelStatus }[]> {
    const res = await this.unary<{ models: Model[]; statuses: ModelStatus[] }>('ModelService', 'ListModels', { dataset });
    return res.models.map((model, i) => ({ model, status: res.statuses[i] }));
  }

  /** The server's pretrained catalog, with what is installed of each entry. */
  async listPretrainedModels(): Promise<PretrainedModel[]> {
    return (await this.unary<{ models: PretrainedModel[] }>('ModelService', 'ListPretrainedModels', {})).models;
  }

  /**
   * Has the server download (SHA-256 verified, resumed after interruptions) and install a model
   * from its catalog (`catalog_name`) or a URL (`url` + `sha256`); progress arrives through
   * `onProgress`. Resolves with the installed model folders.
   */
  async installPretrainedModel(request: InstallPretrainedRequest, onProgress: (p: InstallProgress) => void = () => {}, o: { signal?: AbortSignal } = {}): Promise<InstallPretrainedResult> {
    const start = this.method<(req: object, md: grpc.Metadata) => grpc.ClientReadableStream<{ progress?: InstallProgress | null; result?: InstallPretrainedResult | null }>>('ModelService', 'InstallPretrainedModel');
    const call = start(request, this.metadata());
    const abort = () => call.cancel();
    o.signal?.addEventListener('abort', abort, { once: true });
    try {
      let result: InstallPretrainedResult | undefined;
      for await (const message of call as AsyncIterable<{ progress?: InstallProgress | null; result?: InstallPretrainedResult | null }>) {
        if (message.progress) onProgress(message.progress);
        else if (message.result) result = message.result;
      }
      if (!result) throw new Error('the InstallPretrainedModel stream ended without a result');
      return result;
    } finally {
      o.signal?.removeEventListener('abort', abort);
    }
  }

  /**
   * Exports installed models as a zip (nnU-Net v2's member paths plus model.onnx per fold) into
   * `outputFile`, which appears only once complete and its SHA-256 checked.
   */
  async exportModel(request: ExportModelRequest, outputFile: string): Promise<{ header: ExportModelHeader; sha256: string; chunks: number }> {
    const start = this.method<(req: object, md: grpc.Metadata) => grpc.ClientReadableStream<{ header?: ExportModelHeader | null; chunk?: Buffer | null; sha256?: string }>>('ModelService', 'ExportModel');
    const call = start(request, this.metadata());
    const out = new OutputFile(outputFile);
    try {
      let header: ExportModelHeader | undefined;
      let sha256 = '';
      let chunks = 0;
      let offset = 0;
      for await (const message of call as AsyncIterable<{ header?: ExportModelHeader | null; chunk?: Buffer | null; sha256?: string }>) {
        if (message.header) header = message.header;
        else if (message.chunk) {
          await out.write(offset, message.chunk);
          offset += message.chunk.length;
          chunks++;
        } else if (message.sha256) sha256 = message.sha256;
      }
      if (!header || !sha256) throw new Error('the ExportModel stream ended without header and SHA-256');
      await out.commit(header.size_bytes, sha256);
      return { header, sha256, chunks };
    } catch (err) {
      call.cancel();
      await out.discard();
      throw err;
    }
  }
}

interface PredictResponseMessage {
  progress?: PredictProgress | null;
  geometry?: PredictGeometry | null;
  chunk?: { output: string; offset: number; data: Buffer } | null;
  summary?: PredictSummary | null;
}
