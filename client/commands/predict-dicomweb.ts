// `nnunet predict_dicomweb`: segments a series that lives in a PACS and stores the result back
// there. The series is found with QIDO-RS and pulled with WADO-RS, predicted, and the DICOM SEG is
// stored with STOW-RS into the same study; the SEG's SOPInstanceUID is printed.
//
// The prediction runs on a server, like every server command: the one named by --server (or
// NNUNET_SERVER), else one embedded in this process over the local data roots. The series goes up
// as a zip in InferenceService.Predict (INPUT_FORMAT_DICOM) and the SEG comes back
// (PREDICT_OUTPUT_DICOM_SEG), through the SDK's predictDicom.
import { DicomWebClient, dicomWebConfigFromEnv, DicomWebError, type SeriesSummary } from '../../server/dicomweb/client.js';
import { UsageError, type ParsedArgs } from '../args.js';
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import { NnunetClient, type PredictDicomOptions, type PredictDicomResult } from '../sdk/index.js';
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

export interface DicomPredictRequest extends PredictDicomOptions {
  /** host:port of the server. */
  address: string;
  token?: string;
}

/** Predict over gRPC with DICOM input against the server at `address` (the SDK's predictDicom). */
export async function predictDicomOnServer(r: DicomPredictRequest): Promise<PredictDicomResult> {
  const { address, token, ...options } = r;
  const client = new NnunetClient({ address, token, channelOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 } });
  try {
    return await client.predictDicom(options);
  } finally {
    client.close();
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
      'QIDO-RS finds the series, WADO-RS pulls it, the model predicts (on the server given by --server or NNUNET_SERVER, else on an embedded one over the local data roots) and STOW-RS stores the DICOM SEG into the same study. Credentials: NNUNET_DICOMWEB_USER/NNUNET_DICOMWEB_PASSWORD or NNUNET_DICOMWEB_TOKEN. Prints the SEG\'s SOPInstanceUID.',
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
      ...SERVER_OPTIONS,
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
  const result = await withConnection(args, io, ({ client }, signal) => client.predictDicom({ model, folds, mirroring, files, seriesInstanceUID: series, signal }));
  await pacs.store(study, [result.seg]);
  io.stderr(`stored the DICOM SEG (series ${result.seriesInstanceUID}, ${result.seg.length} bytes) into study ${study}`);
  io.stdout(result.sopInstanceUID);
  return EXIT.ok;
}
