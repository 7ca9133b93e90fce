// `nnunet list_models [-d DATASET]`: the models the server can predict with (ModelService.ListModels),
// as a table or JSON.
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import { EXIT, type Command } from './types.js';

/** Left-aligned columns separated by two spaces. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

export const listModelsCommand: Command = {
  spec: {
    name: 'list_models',
    summary: 'list the trained and installed models the server can predict with',
    description: 'Lists every model folder in the model repository (nnUNet_results) of the server: dataset, trainer, plans, configuration and folds.',
    options: [
      { flags: ['-d'], dest: 'dataset', help: 'only models of this dataset (id or name)', metavar: 'DATASET' },
      { flags: ['--json'], dest: 'json', type: 'flag', help: 'print JSON' },
      ...SERVER_OPTIONS,
    ],
  },
  async run(args, io) {
    return withConnection(args, io, async ({ client }) => {
      const models = await client.listModels(args.dataset === undefined ? '' : String(args.dataset));
      if (args.json) io.stdout(JSON.stringify(models, null, 2));
      else if (models.length === 0) io.stdout(args.dataset === undefined ? 'no models installed' : `no models of dataset ${args.dataset}`);
      else io.stdout(table(['DATASET', 'TRAINER', 'PLANS', 'CONFIGURATION', 'FOLDS'], models.map((m) => [m.dataset, m.trainer, m.plans, m.configuration, m.folds.join(',')])));
      return EXIT.ok;
    });
  },
};
