// `nnunet determine_postprocessing` and `nnunet apply_postprocessing` (nnU-Net v2's commands).
// Our decisions live in postprocessing.json; `-pp_pkl_file` is accepted for nnU-Net users and
// resolved to the postprocessing.json written beside it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseDatasetJson } from '../../server/dataset/dataset-json.js';
import { DatasetError } from '../../server/dataset/errors.js';
import { LabelManager } from '../../server/dataset/labels.js';
import { applyPostprocessingToFolder, determinePostprocessing, readPostprocessingJson } from '../../server/evaluation/postprocessing.js';
import { EXIT, type Command } from './types.js';

function readDatasetJson(file: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DatasetError(`cannot read dataset.json: ${(err as Error).message}`, file);
  }
  const { json, problems } = parseDatasetJson(raw);
  if (problems.length > 0) throw new DatasetError(`invalid dataset.json: ${problems.join('; ')}`, file);
  return json;
}

export const determinePostprocessingCommand: Command = {
  spec: {
    name: 'determine_postprocessing',
    summary: 'choose connected-component postprocessing on cross-validation predictions',
    options: [
      { flags: ['-i'], dest: 'input', required: true, help: 'folder with predictions', metavar: 'FOLDER' },
      { flags: ['-ref'], dest: 'ref', required: true, help: 'folder with reference segmentations', metavar: 'FOLDER' },
      { flags: ['-dataset_json'], dest: 'dj', help: 'dataset.json (default: INPUT/dataset.json)', metavar: 'FILE' },
      { flags: ['-plans_json'], dest: 'pj', help: 'plans.json (accepted for compatibility)', metavar: 'FILE' },
      { flags: ['-np'], dest: 'np', type: 'int', default: 4, help: 'cases processed in parallel' },
    ],
  },
  async run(args, io) {
    const input = String(args.input);
    const json = readDatasetJson(String(args.dj ?? join(input, 'dataset.json')));
    const { json: pp } = await determinePostprocessing({
      predictionFolder: input,
      referenceFolder: String(args.ref),
      labels: LabelManager.fromDatasetJson(json),
      fileEnding: json.file_ending,
      concurrency: args.np as number,
    });
    io.stdout(`foreground Dice ${pp.input_folder.foreground_mean.Dice.toFixed(4)} -> ${pp.postprocessed.foreground_mean.Dice.toFixed(4)}`);
    io.stdout(pp.postprocessing_kwargs.length === 0 ? 'no postprocessing step improved Dice' : `steps: ${pp.postprocessing_kwargs.map((k) => `largest component of ${JSON.stringify(k.labels_or_regions)}`).join(', ')}`);
    io.stdout(`written: ${join(input, 'postprocessing.json')}, ${join(input, 'postprocessed')}/`);
    return EXIT.ok;
  },
};

export const applyPostprocessingCommand: Command = {
  spec: {
    name: 'apply_postprocessing',
    summary: 'apply a postprocessing.json to a folder of segmentations',
    options: [
      { flags: ['-i'], dest: 'input', required: true, help: 'input folder', metavar: 'FOLDER' },
      { flags: ['-o'], dest: 'output', required: true, help: 'output folder', metavar: 'FOLDER' },
      { flags: ['-pp_json', '-pp_pkl_file'], dest: 'pp', required: true, help: 'postprocessing.json (a postprocessing.pkl path means the .json beside it)', metavar: 'FILE' },
      { flags: ['-dataset_json'], dest: 'dj', help: 'dataset.json for the file ending (default: INPUT/dataset.json, else .nii.gz)', metavar: 'FILE' },
      { flags: ['-plans_json'], dest: 'pj', help: 'plans.json (accepted for compatibility)', metavar: 'FILE' },
      { flags: ['-np'], dest: 'np', type: 'int', default: 4, help: 'cases processed in parallel' },
    ],
  },
  async run(args, io) {
    let ppFile = String(args.pp);
    if (ppFile.endsWith('.pkl')) ppFile = join(dirname(ppFile), 'postprocessing.json');
    if (!existsSync(ppFile)) throw new DatasetError('postprocessing.json not found', ppFile);
    const steps = readPostprocessingJson(ppFile);
    const djFile = args.dj ? String(args.dj) : join(String(args.input), 'dataset.json');
    const ending = existsSync(djFile) ? readDatasetJson(djFile).file_ending : '.nii.gz';
    const files = await applyPostprocessingToFolder(String(args.input), String(args.output), ending, steps, args.np as number);
    io.stdout(`postprocessed ${files.length} file(s) with ${steps.length} step(s) into ${args.output}`);
    return EXIT.ok;
  },
};
