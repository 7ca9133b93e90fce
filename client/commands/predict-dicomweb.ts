// `nnunet predict_dicomweb`: segments a series that lives in a PACS and stores the result back
// there. The series is found with QIDO-RS and pulled with WADO-RS, predicted, and the DICOM SEG is
// stored with STOW-RS into the same study; the SEG's SOPInstanceUID is printed.
//
// With --server (or NNUNET_SERVER) the prediction runs on the server: the series goes up as a zip
// in InferenceService.Predict (INPUT_FORMAT_DICOM) and the SEG comes back (PREDICT_OUTPUT_DICOM_SEG).
// Without it, the model is loaded from this machine's results folder (nnUNet_results or
// NNUNET_HOME) and predicted in this process. Both write the same SEG (server/io/dicom).
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { zipSync } from 'fflate';
import { dataRoots } from '../../server/dataset/paths.js';
import { DicomWebClient, dicomWebConfigFromEnv, DicomWebError, type SeriesSummary } from '../../server/dicomweb/client.js';
import { loadModelFolder, releaseModel } from '../../server/inference/model-folder.js';
import { predictCase } from '../../server/inference/predictor.js';
import { predictionToSeg, seriesToNifti } from '../../server/io/dicom/case.js';
import type { DicomFile } from '../../server/io/dicom/series.js';
import { listModels } from '../../server/models/repository.js';
import { nnunetV1 } from '../../server/rpc/protos.js';
import { UsageError, type ParsedArgs } from '../args.js';
import { EXIT, type Command, type CommandIO } from './types.js';

/** A problem the user can act on (no such model, no or several image series, a bad SEG transfer). */
export class PredictDicomwebError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PredictDicomwebError';
  }
}

/** Modalities of image series a model can read; SEG, SR, PR... series of the study are passed over. */
const IMAGE_MODALITIES = new Set(['CT', 'MR', 'PT']);

export interface DicomPredictRequest {
  /** host:port of the server. */
  address: string;
  token?: string;
  model: { dataset: string; configuration: string; trainer?: string; plans?: string };
  folds?: string[];
  mirroring?: boolean;
  /** The series' files; or instead `dicomweb`, a series the server pulls from its own PACS. */
  files?: DicomFile[];
  dicomweb?: { url?: string; study: string; series: string; storeSeg?: boolean };
  seriesInstanceUID?: string;
}

export interface DicomPredictResult {
  seg: Uint8Array;
  sopInstanceUID: string;
  seriesInstanceUID: string;
  geometry: { shape: number[]; spacing: number[]; affine: number[] };
  /** The server stored the SEG into its PACS (dicomweb.storeSeg). */
  stored: boolean;
}

/** The series' files as one zip (stored, not deflated: pixel data is often compressed already). */
export function zipSeries(files: DicomFile[]): Uint8Array {
  const entries: Record<string, [Uint8Array, { level: 0 }]> = {};
  files.forEach((f, i) => (entries[`${String(i).padStart(5, '0')}.dcm`] = [f.bytes, { level: 0 }]));
  return zipSync(entries);
}

interface PredictMessage {
  progress?: unknown;
  geometry?: { shape: number[]; spacing: number[]; affine: number[]; dicom_seg_size_bytes: number };
  chunk?: { output: string; offset: number; data: Buffer };
  summary?: { dicom_seg_sha256: string; dicom_seg_sop_instance_uid: string; dicom_seg_series_instance_uid: string; dicom_seg_stored: boolean };
}

/** Predict over gRPC with DICOM input, asking for the DICOM SEG only; checks its SHA-256. */
export async function predictDicomOnServer(r: DicomPredictRequest): Promise<DicomPredictResult> {
  const Inference = nnunetV1().InferenceService as grpc.ServiceClientConstructor;
  const client = new Inference(r.address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const metadata = new grpc.Metadata();
  if (r.token) metadata.set('authorization', `Bearer ${r.token}`);
  const zip = r.files ? zipSeries(r.files) : new Uint8Array(0);
  try {
    return await new Promise<DicomPredictResult>((resolve, reject) => {
      const call = (client as unknown as { Predict(md: grpc.Metadata): grpc.ClientDuplexStream<object, PredictMessage> }).Predict(metadata);
      let seg: Buffer | undefined;
      let geometry: PredictMessage['geometry'];
      let received = 0;
      call.on('data', (m: PredictMessage) => {
        if (m.geometry) {
          geometry = m.geometry;
          seg = Buffer.alloc(Number(m.geometry.dicom_seg_size_bytes));
        } else if (m.chunk?.output === 'PREDICT_OUTPUT_DICOM_SEG' && seg) {
          m.chunk.data.copy(seg, Number(m.chunk.offset));
          received += m.chunk.data.length;
        } else if (m.summary) {
          const s = m.summary;
          if (!seg || !geometry || received !== seg.length) return reject(new PredictDicomwebError(`the server sent ${received} of ${seg?.length ?? 0} SEG bytes`));
          if (createHash('sha256').update(seg).digest('hex') !== s.dicom_seg_sha256) return reject(new PredictDicomwebError('the SEG received does not match the SHA-256 the server sent'));
          resolve({ seg, sopInstanceUID: s.dicom_seg_sop_instance_uid, seriesInstanceUID: s.dicom_seg_series_instance_uid, geometry, stored: s.dicom_seg_stored });
        }
      });
      call.on('error', reject);
      call.write({
        header: {
          model: { dataset: r.model.dataset, configuration: r.model.configuration, trainer: r.model.trainer ?? '', plans: r.model.plans ?? '' },
          folds: r.folds ?? [],
          mirroring: r.mirroring ?? true,
          outputs: ['PREDICT_OUTPUT_DICOM_SEG'],
          input_format: 'INPUT_FORMAT_DICOM',
          channel_sizes_bytes: r.files ? [zip.length] : [],
          dicom_series_instance_uid: r.seriesInstanceUID ?? '',
          dicomweb_series: r.dicomweb ? { url: r.dicomweb.url ?? '', study_instance_uid: r.dicomweb.study, series_instance_uid: r.dicomweb.series, store_seg: r.dicomweb.storeSeg ?? false } : null,
        },
      });
      const chunk = 1024 * 1024;
      for (let at = 0; at < zip.length; at += chunk) call.write({ chunk: { channel: 0, data: Buffer.from(zip.subarray(at, at + chunk)) } });
      call.end();
    });
  } finally {
    client.close();
  }
}

/** Predicts in this process with an installed model of the local results folder. */
export async function predictDicomLocally(
  files: DicomFile[],
  model: DicomPredictRequest['model'],
  o: { folds?: string[]; mirroring?: boolean; seriesInstanceUID?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ seg: Uint8Array; sopInstanceUID: string; seriesInstanceUID: string }> {
  const results = dataRoots(o.env ?? process.env).results;
  const trainer = model.trainer ?? 'nnUNetTrainer';
  const plans = model.plans ?? 'nnUNetPlans';
  const candidates = listModels(results, model.dataset);
  const hit = candidates.find((m) => m.trainer === trainer && m.plans === plans && m.configuration === model.configuration);
  if (!hit) {
    const known = candidates.map((m) => `${m.trainer}__${m.plans}__${m.configuration}`).join(', ') || 'none';
    throw new PredictDicomwebError(`model ${model.dataset}/${trainer}__${plans}__${model.configuration} is not installed under ${results} (installed for this dataset: ${known})`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'nnunet-dicomweb-'));
  const loaded = await loadModelFolder(hit.folder, { folds: o.folds });
  try {
    const { niftiFile, series } = await seriesToNifti(files, dir, { seriesInstanceUID: o.seriesInstanceUID });
    const p = await predictCase(loaded, [niftiFile], { mirroring: o.mirroring ?? true });
    const written = predictionToSeg(p.segmentation, p.reference, series, loaded.datasetJson.labels, `${hit.dataset}/${trainer}__${plans}__${model.configuration}`);
    return { seg: written.bytes, sopInstanceUID: written.sopInstanceUID, seriesInstanceUID: written.seriesInstanceUID };
  } finally {
    await releaseModel(loaded);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The one image series of a study (CT, MR or PET); an error lists the candidates when there are several. */
export function chooseSeries(study: string, series: SeriesSummary[]): string {
  const images = series.filter((s) => IMAGE_MODALITIES.has(s.modality));
  const list = series.map((s) => `${s.seriesInstanceUID} (${s.modality || '?'}${s.seriesDescription ? `, "${s.seriesDescription}"` : ''}, ${s.instances} instances)`).join('; ');
  if (images.length === 1) return images[0].seriesInstanceUID;
  if (images.length === 0) throw new PredictDicomwebError(`study ${study} has no CT, MR or PET series${list ? `: ${list}` : ''}`);
  throw new PredictDicomwebError(`study ${study} has ${images.length} image series; choose one with --series: ${list}`);
}

export const predictDicomwebCommand: Command = {
  spec: {
    name: 'predict_dicomweb',
    summary: 'segment a series from a DICOMweb PACS and store the DICOM SEG back',
    description:
      'QIDO-RS finds the series, WADO-RS pulls it, the model predicts (on the server given by --server or NNUNET_SERVER, else in this process from the local results folder) and STOW-RS stores the DICOM SEG into the same study. Credentials: NNUNET_DICOMWEB_USER/NNUNET_DICOMWEB_PASSWORD or NNUNET_DICOMWEB_TOKEN. Prints the SEG\'s SOPInstanceUID.',
    options: [
      { flags: ['--url'], dest: 'url', help: 'DICOMweb service root (default: NNUNET_DICOMWEB_URL), e.g. http://localhost:8042/dicom-web', metavar: 'URL' },
      { flags: ['--study'], dest: 'study', required: true, help: 'StudyInstanceUID', metavar: 'UID' },
      { flags: ['--series'], dest: 'series', help: 'SeriesInstanceUID (default: the study\'s only CT/MR/PET series)', metavar: 'UID' },
      { flags: ['-d'], dest: 'dataset', required: true, help: 'dataset id or name of the model', metavar: 'ID' },
      { flags: ['-c'], dest: 'configuration', required: true, help: 'configuration, e.g. 3d_fullres' },
      { flags: ['-f'], dest: 'folds', nargs: '+', help: 'folds to ensemble (default: every fold_N of the model)', metavar: 'FOLD' },
      { flags: ['-tr'], dest: 'trainer', default: 'nnUNetTrainer', help: 'trainer class name' },
      { flags: ['-p'], dest: 'plans', default: 'nnUNetPlans', help: 'plans identifier' },
      { flags: ['--disable_tta'], dest: 'disableTta', type: 'flag', help: 'no test-time mirroring' },
      { flags: ['--server'], dest: 'server', help: 'nnunet-server address host:port (default: NNUNET_SERVER; none: predict in this process)', metavar: 'ADDRESS' },
      { flags: ['--token'], dest: 'token', help: 'bearer token for the server (default: NNUNET_TOKEN)' },
    ],
  },
  async run(args: ParsedArgs, io: CommandIO): Promise<number> {
    try {
      return await predictDicomweb(args, io);
    } catch (err) {
      if (err instanceof DicomWebError || err instanceof PredictDicomwebError) {
        io.stderr(`nnunet predict_dicomweb: error: ${err.message}`);
        return EXIT.failed;
      }
      throw err;
    }
  },
};

async function predictDicomweb(args: ParsedArgs, io: CommandIO): Promise<number> {
  const config = dicomWebConfigFromEnv(io.env, args.url as string | undefined);
  if (!config) throw new UsageError('give --url or set NNUNET_DICOMWEB_URL', 'predict_dicomweb');
  const pacs = new DicomWebClient(config);
  const study = String(args.study);
  const series = (args.series as string | undefined) ?? chooseSeries(study, await pacs.searchSeries(study));
  const files = await pacs.retrieveSeries(study, series);
  if (files.length === 0) throw new PredictDicomwebError(`series ${series} of study ${study} has no instances`);
  io.stderr(`retrieved ${files.length} instance(s) of series ${series}`);
  const model = { dataset: String(args.dataset), configuration: String(args.configuration), trainer: String(args.trainer), plans: String(args.plans) };
  const folds = args.folds as string[] | undefined;
  const mirroring = !args.disableTta;
  const address = (args.server as string | undefined) ?? io.env.NNUNET_SERVER;
  const result = address
    ? await predictDicomOnServer({ address, token: (args.token as string | undefined) ?? io.env.NNUNET_TOKEN, model, folds, mirroring, files, seriesInstanceUID: series })
    : await predictDicomLocally(files, model, { folds, mirroring, seriesInstanceUID: series, env: io.env });
  await pacs.store(study, [result.seg]);
  io.stderr(`stored the DICOM SEG (series ${result.seriesInstanceUID}, ${result.seg.length} bytes) into study ${study}`);
  io.stdout(result.sopInstanceUID);
  return EXIT.ok;
}
