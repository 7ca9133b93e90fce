// `nnunet predict` and `nnunet predict_from_modelfolder`: nnU-Net v2's prediction commands and
// flags. Cases are found in the input folder by nnU-Net's naming (CASE_0000.nii.gz ...); the
// output folder receives CASE.nii.gz (+ CASE.npz/CASE.json) and dataset.json, plans.json and
// predict_from_raw_data_args.json, as nnU-Net writes them.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { discoverImageCases } from '../../server/dataset/cases.js';
import { DatasetError } from '../../server/dataset/errors.js';
import { dataRoots, findDataset } from '../../server/dataset/paths.js';
import { writeFileAtomic } from '../../server/io/atomic.js';
import { readNifti } from '../../server/io/nifti.js';
import { loadModelFolder, releaseModel } from '../../server/inference/model-folder.js';
import { predictCase, writeCasePrediction } from '../../server/inference/predictor.js';
import { savePlans } from '../../server/planning/plans.js';
import type { OptionSpec, ParsedArgs } from '../args.js';
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

async function runPrediction(modelFolder: string, args: ParsedArgs, io: CommandIO): Promise<number> {
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
    ],
  },
  async run(args, io) {
    const roots = dataRoots(io.env);
    // trained models live in nnUNet_results; the raw folder may not exist on an inference-only host
    const name = /^\d+$/.test(String(args.dataset)) ? findDataset(String(args.dataset), roots.results).name : String(args.dataset);
    const folder = join(roots.results, name, `${args.trainer}__${args.plans}__${args.configuration}`);
    if (!existsSync(folder)) throw new DatasetError(`no trained model ${args.trainer}__${args.plans}__${args.configuration} for ${name}`, folder);
    return runPrediction(folder, args, io);
  },
};

export const predictFromModelFolderCommand: Command = {
  spec: {
    name: 'predict_from_modelfolder',
    summary: 'segment images with a model folder (<Trainer>__<Plans>__<configuration>)',
    options: [{ flags: ['-m'], dest: 'model', required: true, help: 'model folder', metavar: 'FOLDER' }, ...COMMON],
  },
  async run(args, io) {
    return runPrediction(String(args.model), args, io);
  },
};
