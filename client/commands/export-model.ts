// `nnunet export_model_to_zip -d ID -o FILE [-c ...] [-tr T] [-p P] [-f ...] [-chk ...]`, with
// nnUNetv2_export_model_to_zip's flags: the server zips the models with nnU-Net v2's member paths
// (plus model.onnx per fold) and streams the zip here, where it is written under a temporary name
// and renamed once its SHA-256 matches. Unlike nnU-Net, a configuration or fold asked for but not
// installed is an error, not skipped; with no -c / -f every installed one is exported.
import { resolve } from 'node:path';
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import { EXIT, type Command } from './types.js';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

export const exportModelToZipCommand: Command = {
  spec: {
    name: 'export_model_to_zip',
    summary: "export trained models as a zip in nnU-Net v2's layout (nnUNetv2_install_pretrained_model_from_zip accepts it)",
    options: [
      { flags: ['-d'], dest: 'dataset', required: true, help: 'dataset name or id', metavar: 'DATASET' },
      { flags: ['-o'], dest: 'output', required: true, help: 'output zip file', metavar: 'FILE' },
      { flags: ['-c'], dest: 'configurations', nargs: '+', help: 'configurations to export (default: every one installed for the trainer and plans)', metavar: 'CONFIGURATION' },
      { flags: ['-tr'], dest: 'trainer', default: 'nnUNetTrainer', help: 'trainer (default nnUNetTrainer)', metavar: 'TRAINER' },
      { flags: ['-p'], dest: 'plans', default: 'nnUNetPlans', help: 'plans identifier (default nnUNetPlans)', metavar: 'PLANS' },
      { flags: ['-f'], dest: 'folds', nargs: '+', help: 'folds to export (default: every fold folder present)', metavar: 'FOLD' },
      { flags: ['-chk'], dest: 'checkpoints', nargs: '+', help: 'checkpoint files per fold (default checkpoint_final.pth, or our .safetensors)', metavar: 'CHECKPOINT' },
      ...SERVER_OPTIONS,
    ],
  },
  async run(args, io) {
    const output = resolve(String(args.output));
    return withConnection(args, io, async ({ client }) => {
      io.stderr(`exporting dataset ${args.dataset} (${args.trainer}__${args.plans})`);
      const { header, sha256 } = await client.exportModel(
        { dataset: String(args.dataset), configurations: list(args.configurations), trainer: String(args.trainer), plans: String(args.plans), folds: list(args.folds), checkpoints: list(args.checkpoints) },
        output,
      );
      for (const m of header.models) io.stderr(`  ${m.dataset}/${m.trainer}__${m.plans}__${m.configuration}`);
      io.stdout(`wrote ${output}: ${header.members.length} files, ${(header.size_bytes / 1024 / 1024).toFixed(1)} MB, SHA-256 ${sha256}`);
      return EXIT.ok;
    });
  },
};
