// `nnunet ensemble -i F1 F2 ... -o OUT [--save_npz]`: nnU-Net v2's probability ensembling.
import { ensembleFolders } from '../../server/evaluation/ensemble.js';
import { EXIT, type Command } from './types.js';

export const ensembleCommand: Command = {
  spec: {
    name: 'ensemble',
    summary: 'average the probabilities (CASE.npz) of several prediction folders',
    options: [
      { flags: ['-i'], dest: 'input', nargs: '+', required: true, help: 'prediction folders (made with --save_probabilities)', metavar: 'FOLDER' },
      { flags: ['-o'], dest: 'output', required: true, help: 'output folder', metavar: 'FOLDER' },
      { flags: ['--save_npz'], dest: 'saveNpz', type: 'flag', help: 'also write the averaged probabilities' },
      { flags: ['-np'], dest: 'np', type: 'int', help: 'accepted for compatibility' },
    ],
  },
  async run(args, io) {
    const cases = await ensembleFolders(args.input as string[], String(args.output), { saveNpz: Boolean(args.saveNpz) });
    io.stdout(`ensembled ${cases.length} case(s) from ${(args.input as string[]).length} folders into ${args.output}`);
    return EXIT.ok;
  },
};
