// `nnunet find_best_configuration DATASET [...]`: nnUNetv2_find_best_configuration's flags.
import { findBestConfiguration } from '../../server/evaluation/find-best-configuration.js';
import { EXIT, type Command } from './types.js';

export const findBestConfigurationCommand: Command = {
  spec: {
    name: 'find_best_configuration',
    summary: 'pick the best configuration or ensemble from the cross-validation results',
    positionals: [{ dest: 'dataset', help: 'dataset id or name' }],
    options: [
      { flags: ['-c'], dest: 'configurations', nargs: '+', default: ['2d', '3d_fullres', '3d_lowres', '3d_cascade_fullres'], help: 'configurations to consider', metavar: 'CONFIG' },
      { flags: ['-tr'], dest: 'trainers', nargs: '+', default: ['nnUNetTrainer'], help: 'trainers to consider', metavar: 'TRAINER' },
      { flags: ['-p'], dest: 'plans', nargs: '+', default: ['nnUNetPlans'], help: 'plans identifiers to consider', metavar: 'PLANS' },
      { flags: ['-f'], dest: 'folds', type: 'int', nargs: '+', default: [0, 1, 2, 3, 4], help: 'folds', metavar: 'FOLD' },
      { flags: ['--disable_ensembling'], dest: 'noEnsembling', type: 'flag', help: 'consider single models only' },
      { flags: ['-np'], dest: 'np', type: 'int', default: 4, help: 'cases processed in parallel' },
      { flags: ['--no_overwrite'], dest: 'noOverwrite', type: 'flag', help: 'accepted for compatibility' },
    ],
  },
  async run(args, io) {
    const r = await findBestConfiguration(String(args.dataset), {
      configurations: args.configurations as string[],
      trainers: args.trainers as string[],
      plansIdentifiers: args.plans as string[],
      folds: args.folds as number[],
      allowEnsembling: !args.noEnsembling,
      concurrency: args.np as number,
      env: io.env,
      onProgress: (m) => io.stderr(m),
    });
    for (const [id, dice] of Object.entries(r.allResults)) io.stdout(`${id}: ${dice.toFixed(4)}`);
    io.stdout(`best: ${r.best} — Dice ${r.resultPrePostprocessing.toFixed(4)}, after postprocessing ${r.resultPostPostprocessing.toFixed(4)}`);
    io.stdout('see inference_instructions.txt in the dataset results folder for the commands to run');
    return EXIT.ok;
  },
};
