// `nnunet install_pretrained_model_from_zip FILE`: uploads an nnU-Net v2 model zip (or ours) to the
// server, which installs it into its nnUNet_results, verified and atomic (ModelService.InstallModel).
import { existsSync } from 'node:fs';
import { DatasetError } from '../../server/dataset/errors.js';
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import { byteProgress } from '../progress.js';
import { EXIT, type Command } from './types.js';

export const installModelFromZipCommand: Command = {
  spec: {
    name: 'install_pretrained_model_from_zip',
    summary: 'install a model zip (from nnUNetv2_export_model_to_zip or ours) into nnUNet_results',
    positionals: [{ dest: 'zip', help: 'the model zip file (on this machine; it is uploaded to the server)' }],
    options: [{ flags: ['--overwrite'], dest: 'overwrite', type: 'flag', help: 'replace model folders that already exist' }, ...SERVER_OPTIONS],
  },
  async run(args, io) {
    if (!existsSync(String(args.zip))) throw new DatasetError('model zip not found', String(args.zip));
    return withConnection(args, io, async ({ client }) => {
      const progress = byteProgress(io, 'uploading model');
      let installed;
      try {
        installed = await client.installModel(String(args.zip), { overwrite: Boolean(args.overwrite), onUploadProgress: (sent, total) => progress.update(sent, total) });
      } finally {
        progress.stop();
      }
      for (const m of installed) io.stdout(`installed ${m.dataset}/${m.trainer}__${m.plans}__${m.configuration} (folds ${m.folds.join(', ')})`);
      return EXIT.ok;
    });
  },
};
