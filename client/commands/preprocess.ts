// `nnunet preprocess -d ID [-plans_name P] [-c CONFIG ...] [-np N ...] [--verbose]`: nnU-Net v2's
// nnUNetv2_preprocess with the same flags and defaults; cases run in a worker pool per configuration.
import { preprocessDataset, type PreprocessProgress } from '../../server/preprocessing/index.js';
import { EXIT, type Command } from './types.js';

const DEFAULT_CONFIGURATIONS = ['2d', '3d_fullres', '3d_lowres'];

export const preprocessCommand: Command = {
  spec: {
    name: 'preprocess',
    summary: 'preprocess the training cases of a planned dataset (crop, normalise, resample)',
    description:
      'Preprocesses every training case for each configuration with the plans in nnUNet_preprocessed/DatasetXXX/<plans_name>.json ' +
      '(nnU-Net v2 nnUNetv2_preprocess). Writes <data_identifier>/CASE.npy, CASE_seg.npy, CASE.json and gt_segmentations/. ' +
      'Configurations missing from the plans are skipped, as nnU-Net does.',
    options: [
      { flags: ['-d'], dest: 'dataset', nargs: '+', required: true, help: 'dataset id(s) (e.g. 4) or folder name(s)', metavar: 'DATASET' },
      { flags: ['-plans_name'], dest: 'plansName', default: 'nnUNetPlans', help: 'plans identifier (file name without .json)' },
      { flags: ['-c'], dest: 'configurations', nargs: '+', default: DEFAULT_CONFIGURATIONS, help: 'configurations to preprocess', metavar: 'CONFIG' },
      {
        flags: ['-np'],
        dest: 'np',
        type: 'int',
        nargs: '+',
        help: 'worker threads: one value for all configurations or one per configuration (default: 8 for 2d and 3d_lowres, 4 otherwise)',
      },
      { flags: ['--verbose'], dest: 'verbose', type: 'flag', help: 'print every case with its shapes and spacing' },
    ],
  },
  async run(args, io) {
    const configurations = args.configurations as string[];
    const np = args.np as number[] | undefined;
    const verbose = Boolean(args.verbose);
    for (const dataset of args.dataset as string[]) {
      const onProgress = (p: PreprocessProgress) => {
        const s = p.summary;
        if (verbose) {
          io.stdout(
            `${p.configuration} ${p.caseId}: shape after cropping [${s.shapeAfterCropping.join(', ')}] -> [${s.newShape.join(', ')}], ` +
              `spacing [${s.spacing.join(', ')}] (${p.done}/${p.total})`,
          );
        } else if (p.done === p.total || p.done % 10 === 0) {
          io.stdout(`${p.configuration}: ${p.done}/${p.total} cases`);
        }
      };
      const result = await preprocessDataset(String(dataset), configurations, np, { plansName: String(args.plansName), env: io.env, onProgress });
      for (const name of result.skipped) {
        io.stdout(`INFO: configuration ${name} not found in plans ${String(args.plansName)}.json of ${result.datasetName}. Skipping.`);
      }
      for (const c of result.configurations) io.stdout(`${result.datasetName} ${c.name}: ${c.cases} case(s) -> ${c.folder}`);
    }
    return EXIT.ok;
  },
};
