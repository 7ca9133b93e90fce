// `nnunet evaluate_folder` and `nnunet evaluate_simple`: nnU-Net v2's evaluation commands,
// writing summary.json next to the predictions unless -o says otherwise.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDatasetJson } from '../../server/dataset/dataset-json.js';
import { DatasetError } from '../../server/dataset/errors.js';
import { LabelManager } from '../../server/dataset/labels.js';
import { evaluateFolder, type Summary } from '../../server/evaluation/index.js';
import type { OptionSpec, PositionalSpec } from '../args.js';
import { EXIT, type Command, type CommandIO } from './types.js';

const POSITIONALS: PositionalSpec[] = [
  { dest: 'gt_folder', help: 'folder with the reference segmentations' },
  { dest: 'pred_folder', help: 'folder with the predicted segmentations' },
];
const COMMON: OptionSpec[] = [
  { flags: ['-o'], dest: 'output', help: 'output summary.json (default: PRED_FOLDER/summary.json)', metavar: 'FILE' },
  { flags: ['-np'], dest: 'np', type: 'int', default: 4, help: 'cases evaluated in parallel' },
  { flags: ['--chill'], dest: 'chill', type: 'flag', help: 'do not fail when predictions are missing for some references' },
];

function report(summary: Summary, outputFile: string, io: CommandIO): number {
  const fmt = (v: number) => (Number.isNaN(v) ? 'NaN' : v.toFixed(4));
  for (const [key, m] of Object.entries(summary.mean)) io.stdout(`${key.padEnd(12)} Dice ${fmt(m.Dice)}  IoU ${fmt(m.IoU)}`);
  io.stdout(`${'foreground'.padEnd(12)} Dice ${fmt(summary.foreground_mean.Dice)}  (${summary.metric_per_case.length} case(s); ${outputFile})`);
  return EXIT.ok;
}

export const evaluateFolderCommand: Command = {
  spec: {
    name: 'evaluate_folder',
    summary: 'metrics of predicted segmentations against references (labels and regions from dataset.json)',
    positionals: POSITIONALS,
    options: [
      { flags: ['-djfile'], dest: 'djfile', required: true, help: 'dataset.json (labels, regions, ignore label, file ending)', metavar: 'FILE' },
      { flags: ['-pfile'], dest: 'pfile', required: true, help: 'plans.json (accepted for compatibility; NIfTI is the only reader)', metavar: 'FILE' },
      ...COMMON,
    ],
  },
  async run(args, io) {
    const djfile = String(args.djfile);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(djfile, 'utf8'));
    } catch (err) {
      throw new DatasetError(`cannot read dataset.json: ${(err as Error).message}`, djfile);
    }
    const { json, problems } = parseDatasetJson(raw);
    if (problems.length > 0) throw new DatasetError(`invalid dataset.json: ${problems.join('; ')}`, djfile);
    const labels = LabelManager.fromDatasetJson(json);
    const outputFile = String(args.output ?? join(String(args.pred_folder), 'summary.json'));
    const summary = await evaluateFolder(String(args.gt_folder), String(args.pred_folder), {
      fileEnding: json.file_ending,
      labelsOrRegions: labels.foregroundRegions,
      ignoreLabel: labels.ignoreLabel,
      outputFile,
      chill: Boolean(args.chill),
      concurrency: args.np as number,
    });
    return report(summary, outputFile, io);
  },
};

export const evaluateSimpleCommand: Command = {
  spec: {
    name: 'evaluate_simple',
    summary: 'metrics of predictions against references for the labels given with -l',
    positionals: POSITIONALS,
    options: [
      { flags: ['-l'], dest: 'labels', type: 'int', nargs: '+', required: true, help: 'labels to evaluate', metavar: 'LABEL' },
      { flags: ['-il'], dest: 'ignore', type: 'int', help: 'ignore label' },
      { flags: ['--file_ending'], dest: 'ending', default: '.nii.gz', help: 'file ending of the segmentations' },
      ...COMMON,
    ],
  },
  async run(args, io) {
    const outputFile = String(args.output ?? join(String(args.pred_folder), 'summary.json'));
    const summary = await evaluateFolder(String(args.gt_folder), String(args.pred_folder), {
      fileEnding: String(args.ending),
      labelsOrRegions: args.labels as number[],
      ignoreLabel: args.ignore as number | undefined,
      outputFile,
      chill: Boolean(args.chill),
      concurrency: args.np as number,
    });
    return report(summary, outputFile, io);
  },
};
