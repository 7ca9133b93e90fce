// `nnunet predict` and `nnunet predict_from_modelfolder`: nnU-Net v2's prediction commands and
// flags. Cases are found in the input folder by nnU-Net's naming (CASE_0000.nii.gz ...).
//
// `predict` names a model of the server (-d -c -tr -p) and streams each case through
// InferenceService.Predict: the channel files go up, the segmentation (and with
// --save_probabilities the CASE.npz) come back and are written under a temporary name, renamed
// when complete and checksummed. The output folder receives CASE.nii.gz (+ CASE.npz and CASE.json
// with the case geometry), dataset.json (as the server describes the model) and
// predict_from_raw_data_args.json. Not carried by Predict: -chk other than checkpoint_final and
// -prev_stage_predictions; for those (and to write plans.json and nnU-Net's full case properties)
// use predict_from_modelfolder.
//
// `predict_from_modelfolder` runs locally on a model folder the user points at (there is nothing
// for a server to hold): it loads the folder and predicts in this process, writing plans.json and
// the full properties too.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import cliProgress from 'cli-progress';
import { discoverImageCases } from '../../server/dataset/cases.js';
import { DatasetError } from '../../server/dataset/errors.js';
import { writeFileAtomic } from '../../server/io/atomic.js';
import { readNifti } from '../../server/io/nifti.js';
import { loadModelFolder, releaseModel } from '../../server/inference/model-folder.js';
import { predictCase, writeCasePrediction } from '../../server/inference/predictor.js';
import { savePlans } from '../../server/planning/plans.js';
import { UsageError, type OptionSpec, type ParsedArgs } from '../args.js';
import { SERVER_OPTIONS, withConnection, type Connection } from '../connection.js';
import { isTty } from '../progress.js';
import type { ModelDetails, ModelRef, PredictGeometry, PredictProgress } from '../sdk/index.js';
import { EXIT, type Command, type CommandIO } from './types.js';

const COMMON: OptionSpec[] = [
  { flags: ['-i'], dest: 'input', required: true, help: 'input folder (CASE_0000.nii.gz, CASE_0001.nii.gz, ...)', metavar: 'FOLDER' },
  { flags: ['-o'], dest: 'output', required: true, help: 'output folder', metavar: 'FOLDER' },
  { flags: ['-f'], dest: 'folds', nargs: '+', help: 'folds to ensemble (default: every fold_N present); "all" for fold_all', metavar: 'FOLD' },
  { flags: ['-step_size'], dest: 'stepSize', type: 'float', default: 0.5, help: 'sliding-window step as a fraction of the patch' },
  { flags: ['--disable_tta'], dest: 'disableTta', type: 'flag', help: 'no test-time mirroring (about 8x faster in 3D)' },
  { flags: ['--save_probabilities'], dest: 'saveProbabilities', type: 'flag', help: 'also write CASE.npz (key "probabilities") and CASE.json' },
  { flags: ['--continue_prediction'], dest: 'continue', type: 'flag', help: 'skip cases whose output already exists' },
  { flags: ['-chk'], dest: 'checkpoint', default: 'checkpoint_final', help: 'checkpoint name (with or without .pth)' },
  { flags: ['-prev_stage_predictions'], dest: 'prev', help: 'previous-stage segmentations for a cascade configuration', metavar: 'FOLDER' },
  { flags: ['-device'], dest: 'device', default: 'cpu', choices: ['cpu', 'cuda'], help: 'execution device' },
  { flags: ['-npp'], dest: 'npp', type: 'int', help: 'accepted for compatibility (preprocessing runs in-process)' },
  { flags: ['-nps'], dest: 'nps', type: 'int', help: 'accepted for compatibility (export runs in-process)' },
  { flags: ['--verbose'], dest: 'verbose', type: 'flag', help: 'print per-case timings' },
];

/** Predicts in this process with a model folder on this machine (predict_from_modelfolder). */
async function predictLocally(modelFolder: string, args: ParsedArgs, io: CommandIO): Promise<number> {
  if (args.device === 'cuda') {
    io.stderr('nnunet predict: -device cuda is not available yet (UNIMPLEMENTED): this build runs onnxruntime on the CPU only.');
    return EXIT.unimplemented;
  }
  const input = String(args.input);
  const output = String(args.output);
  const checkpoint = String(args.checkpoint).replace(/\.(pth|safetensors)$/, '');
  const model = await loadModelFolder(modelFolder, { folds: args.folds as string[] | undefined, checkpoint });
  try {
    const ending = model.datasetJson.file_ending;
    const cases = discoverImageCases(input, ending);
    if (cases.length === 0) throw new DatasetError(`no images named CASE_0000${ending} in the input folder`, input);
    mkdirSync(output, { recursive: true });
    await writeFileAtomic(join(output, 'dataset.json'), JSON.stringify(model.datasetJson, null, 4));
    await savePlans(join(output, 'plans.json'), model.plans);
    await writeFileAtomic(join(output, 'predict_from_raw_data_args.json'), JSON.stringify({ model_folder: modelFolder, ...args }, null, 4));
    const todo = args.continue ? cases.filter((c) => !existsSync(join(output, c.id + ending))) : cases;
    io.stderr(`predicting ${todo.length} case(s) with ${model.configurationName}, fold(s) ${model.folds.map((f) => f.fold).join(', ')}${args.disableTta ? ', no mirroring' : ''}`);
    const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'cases {bar} {value}/{total} | {case}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(todo.length, 0, { case: '' });
    for (const [i, c] of todo.entries()) {
      let previousStage: ArrayLike<number> | undefined;
      if (model.configuration.previous_stage) {
        if (!args.prev) throw new DatasetError(`configuration ${model.configurationName} is a cascade stage: give -prev_stage_predictions`);
        previousStage = (await readNifti(join(String(args.prev), c.id + ending))).data;
      }
      const p = await predictCase(model, c.images, { stepSize: args.stepSize as number, mirroring: !args.disableTta, saveProbabilities: Boolean(args.saveProbabilities), previousStage });
      await writeCasePrediction(output, c.id, ending, p);
      bar?.update(i + 1, { case: c.id });
      if (args.verbose || !bar) {
        const t = p.timings;
        io.stderr(`${c.id}: done in ${(t.readS + t.preprocessS + t.predictS + t.exportS).toFixed(2)} s (read ${t.readS.toFixed(2)}, preprocess ${t.preprocessS.toFixed(2)}, predict ${t.predictS.toFixed(2)}, export ${t.exportS.toFixed(2)})`);
      }
    }
    bar?.stop();
    io.stdout(`wrote ${todo.length} segmentation(s) to ${output}`);
    return EXIT.ok;
  } finally {
    await releaseModel(model);
  }
}

/** dataset.json as the server describes the model: what ensemble and apply_postprocessing read. */
function datasetJsonOf(d: ModelDetails): Record<string, unknown> {
  return {
    channel_names: Object.fromEntries(d.channel_names.map((n, i) => [String(i), n])),
    labels: Object.fromEntries(d.labels.map((l) => [l.name, l.values.length === 1 ? l.values[0] : l.values])),
    numTraining: 0,
    file_ending: d.file_ending,
  };
}

/**
 * CASE.json from the geometry Predict returns, in nnU-Net's property layout (spacing and shape
 * in the array order, the NIfTI affine as nibabel_stuff.original_affine); the crop box and the
 * other preprocessing details stay on the server.
 */
function caseProperties(g: PredictGeometry): Record<string, unknown> {
  const affine = [0, 1, 2, 3].map((r) => g.affine.slice(r * 4, r * 4 + 4));
  return { spacing: [...g.spacing].reverse(), shape_before_cropping: [...g.shape].reverse(), nibabel_stuff: { original_affine: affine } };
}

const STAGES: Record<string, string> = {
  PREDICT_STAGE_QUEUED: 'queued on the server',
  PREDICT_STAGE_LOADING_MODEL: 'loading the model',
  PREDICT_STAGE_EXPORTING: 'exporting',
};
const stageText = (p: PredictProgress) => (p.stage === 'PREDICT_STAGE_PREDICTING' ? `predicting ${p.done}/${p.total} tiles` : (STAGES[p.stage] ?? ''));

/** Predicts every case of the input folder through the server's Predict. */
async function predictThroughServer({ client, address, embedded }: Connection, args: ParsedArgs, io: CommandIO, signal: AbortSignal): Promise<number> {
  const input = String(args.input);
  const output = String(args.output);
  const model: ModelRef = { dataset: String(args.dataset), trainer: String(args.trainer), plans: String(args.plans), configuration: String(args.configuration) };
  const details = await client.getModel(model);
  const name = `${details.model.dataset}/${details.model.trainer}__${details.model.plans}__${details.model.configuration}`;
  const requested = args.folds as string[] | undefined;
  for (const f of requested ?? []) {
    if (!details.model.folds.includes(f)) throw new DatasetError(`fold ${f} was requested but fold_${f} does not exist (available: ${details.model.folds.join(', ') || 'none'})`, name);
  }
  const folds = requested ?? details.model.folds.filter((f) => f !== 'all');
  const ending = details.file_ending;
  const cases = discoverImageCases(input, ending);
  if (cases.length === 0) throw new DatasetError(`no images named CASE_0000${ending} in the input folder`, input);
  const stray = readdirSync(input).filter((f) => f.endsWith(ending) && !/_\d{4}$/.test(f.slice(0, -ending.length)));
  if (stray.length > 0) {
    throw new DatasetError(`${stray.length} file(s) not named CASE_XXXX${ending} (XXXX = the channel number): ${stray.slice(0, 3).join(', ')}${stray.length > 3 ? ', ...' : ''}; move them out of the input folder`, input);
  }
  mkdirSync(output, { recursive: true });
  // As nnUNetv2_predict: the model's dataset.json and plans.json next to the predictions (servers
  // older than these fields get a dataset.json rebuilt from the model description).
  await writeFileAtomic(join(output, 'dataset.json'), details.dataset_json || JSON.stringify(datasetJsonOf(details), null, 4));
  if (details.plans_json) await writeFileAtomic(join(output, 'plans.json'), details.plans_json);
  const { token: _token, server: _server, ...flags } = args;
  await writeFileAtomic(join(output, 'predict_from_raw_data_args.json'), JSON.stringify({ ...flags, model: name, server: embedded ? 'embedded' : address }, null, 4));
  const todo = args.continue ? cases.filter((c) => !existsSync(join(output, c.id + ending))) : cases;
  io.stderr(`predicting ${todo.length} case(s) with ${details.model.configuration}, fold(s) ${folds.join(', ')}${args.disableTta ? ', no mirroring' : ''}`);
  const bar = isTty() ? new cliProgress.SingleBar({ format: 'cases {bar} {value}/{total} | {case} {status}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(todo.length, 0, { case: '', status: '' });
  try {
    for (const [i, c] of todo.entries()) {
      const status = (text: string) => bar?.update(i, { case: c.id, status: text });
      // Predict sends NIfTI gzipped; an uncompressed ending gets unpacked after the checksum.
      const gz = ending.endsWith('.gz');
      const segmentation = gz ? join(output, c.id + ending) : join(output, `.${c.id}.download.nii.gz`);
      let result;
      try {
        result = await client.predictFile(c.images, segmentation, {
          model,
          folds,
          mirroring: !args.disableTta,
          stepSize: args.stepSize as number,
          ...(args.saveProbabilities ? { probabilitiesFile: join(output, `${c.id}.npz`) } : {}),
          onUploadProgress: (sent, total) => status(`uploading ${Math.round((100 * sent) / Math.max(1, total))}%`),
          onProgress: (p) => status(stageText(p)),
          signal,
        });
        if (!gz) await writeFileAtomic(join(output, c.id + ending), gunzipSync(readFileSync(segmentation)));
      } finally {
        if (!gz) await rm(segmentation, { force: true });
      }
      if (args.saveProbabilities) await writeFileAtomic(join(output, `${c.id}.json`), JSON.stringify(caseProperties(result.geometry), null, 2));
      bar?.update(i + 1, { case: c.id, status: '' });
      if (args.verbose || !bar) {
        const t = result.summary;
        const total = t.queue_seconds + t.preprocess_seconds + t.predict_seconds + t.export_seconds;
        io.stderr(`${c.id}: done in ${total.toFixed(2)} s (queue ${t.queue_seconds.toFixed(2)}, preprocess ${t.preprocess_seconds.toFixed(2)}, predict ${t.predict_seconds.toFixed(2)}, export ${t.export_seconds.toFixed(2)})`);
      }
    }
  } finally {
    bar?.stop();
  }
  io.stdout(`wrote ${todo.length} segmentation(s) to ${output}`);
  return EXIT.ok;
}

export const predictCommand: Command = {
  spec: {
    name: 'predict',
    summary: 'segment images with a trained model of a dataset',
    options: [
      { flags: ['-d'], dest: 'dataset', required: true, help: 'dataset id or name', metavar: 'DATASET' },
      { flags: ['-c'], dest: 'configuration', required: true, help: 'configuration, e.g. 3d_fullres', metavar: 'CONFIG' },
      { flags: ['-tr'], dest: 'trainer', default: 'nnUNetTrainer', help: 'trainer name' },
      { flags: ['-p'], dest: 'plans', default: 'nnUNetPlans', help: 'plans name' },
      ...COMMON,
      ...SERVER_OPTIONS,
    ],
  },
  async run(args, io) {
    if (args.device === 'cuda') {
      io.stderr('nnunet predict: -device cuda is not available yet (UNIMPLEMENTED): this build runs onnxruntime on the CPU only.');
      return EXIT.unimplemented;
    }
    const checkpoint = String(args.checkpoint).replace(/\.(pth|safetensors)$/, '');
    const local = 'the server predicts with checkpoint_final of single-stage models; run nnunet predict_from_modelfolder -m <model folder> (local) with the same flags';
    if (checkpoint !== 'checkpoint_final') throw new UsageError(`-chk ${checkpoint}: ${local}`, 'predict');
    if (args.prev !== undefined) throw new UsageError(`-prev_stage_predictions: ${local}`, 'predict');
    return withConnection(args, io, (connection, signal) => predictThroughServer(connection, args, io, signal));
  },
};

export const predictFromModelFolderCommand: Command = {
  spec: {
    name: 'predict_from_modelfolder',
    summary: 'segment images with a model folder (<Trainer>__<Plans>__<configuration>) on this machine, in this process',
    options: [{ flags: ['-m'], dest: 'model', required: true, help: 'model folder', metavar: 'FOLDER' }, ...COMMON],
  },
  async run(args, io) {
    return predictLocally(String(args.model), args, io);
  },
};
