// `nnunet find_best_configuration DATASET [...]`: nnUNetv2_find_best_configuration's flags, run by
// the server as a job (TrainingService.FindBestConfiguration) on its nnUNet_results.
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import { followJob, jobResult } from './jobs.js';
import { EXIT, type Command } from './types.js';

interface FindBestResult {
  allResults: Record<string, number>;
  best: string;
  resultPrePostprocessing: number;
  resultPostPostprocessing: number;
}

export const findBestConfigurationCommand: Command = {
  spec: {
    name: 'find_best_configuration',
    summary: 'pick the best configuration or ensemble from the cross-validation results',
    description:
      'Compares the cross-validation Dice of the trained configurations (and their ensembles) in the results root of ' +
      'the server, determines postprocessing, and writes inference_information.json and inference_instructions.txt there.',
    positionals: [{ dest: 'dataset', help: 'dataset id or name' }],
    options: [
      { flags: ['-c'], dest: 'configurations', nargs: '+', default: ['2d', '3d_fullres', '3d_lowres', '3d_cascade_fullres'], help: 'configurations to consider', metavar: 'CONFIG' },
      { flags: ['-tr'], dest: 'trainers', nargs: '+', default: ['nnUNetTrainer'], help: 'trainers to consider', metavar: 'TRAINER' },
      { flags: ['-p'], dest: 'plans', nargs: '+', default: ['nnUNetPlans'], help: 'plans identifiers to consider', metavar: 'PLANS' },
      { flags: ['-f'], dest: 'folds', type: 'int', nargs: '+', default: [0, 1, 2, 3, 4], help: 'folds', metavar: 'FOLD' },
      { flags: ['--disable_ensembling'], dest: 'noEnsembling', type: 'flag', help: 'consider single models only' },
      { flags: ['-np'], dest: 'np', type: 'int', default: 4, help: 'cases processed in parallel' },
      { flags: ['--no_overwrite'], dest: 'noOverwrite', type: 'flag', help: 'accepted for compatibility' },
      ...SERVER_OPTIONS,
    ],
  },
  async run(args, io) {
    return withConnection(args, io, async ({ client }, signal) => {
      const job = await client.findBestConfiguration({
        dataset: String(args.dataset),
        configurations: args.configurations as string[],
        trainers: args.trainers as string[],
        plans_identifiers: args.plans as string[],
        num_processes: args.np as number,
        folds: (args.folds as number[]).map(String),
        disable_ensembling: Boolean(args.noEnsembling),
      });
      const done = await followJob(client, job, { signal, label: 'find_best_configuration', onLog: (m) => io.stderr(m) });
      const r = jobResult<FindBestResult>(done);
      for (const [id, dice] of Object.entries(r.allResults)) io.stdout(`${id}: ${dice.toFixed(4)}`);
      io.stdout(`best: ${r.best} — Dice ${r.resultPrePostprocessing.toFixed(4)}, after postprocessing ${r.resultPostPostprocessing.toFixed(4)}`);
      io.stdout('see inference_instructions.txt in the dataset results folder for the commands to run');
      return EXIT.ok;
    });
  },
};
