// `nnunet install_pretrained_model_from_zip FILE`: installs an nnU-Net v2 model zip (or ours) into
// nnUNet_results, verified and atomic (see server/models/install.ts).
import { dataRoots } from '../../server/dataset/paths.js';
import { installModelZip } from '../../server/models/install.js';
import { EXIT, type Command } from './types.js';

export const installModelFromZipCommand: Command = {
  spec: {
    name: 'install_pretrained_model_from_zip',
    summary: 'install a model zip (from nnUNetv2_export_model_to_zip or ours) into nnUNet_results',
    positionals: [{ dest: 'zip', help: 'the model zip file' }],
    options: [{ flags: ['--overwrite'], dest: 'overwrite', type: 'flag', help: 'replace model folders that already exist' }],
  },
  async run(args, io) {
    const roots = dataRoots(io.env);
    const installed = await installModelZip(String(args.zip), roots.results, { overwrite: Boolean(args.overwrite), onProgress: (m) => io.stderr(m) });
    for (const m of installed) io.stdout(`installed ${m.dataset}/${m.model} (folds ${m.folds.join(', ')}) in ${m.folder}`);
    return EXIT.ok;
  },
};
