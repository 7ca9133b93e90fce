// `nnunet verify_dataset_integrity -d ID`: nnU-Net v2's integrity check as its own command
// (nnU-Net only runs it inside plan_and_preprocess); lists every problem, exits 1 if any.
import { dataRoots, findDataset, verifyDatasetIntegrity } from '../../server/dataset/index.js';
import type { IntegrityReport } from '../../server/dataset/index.js';
import { EXIT, type Command } from './types.js';

function formatReport(name: string, report: IntegrityReport): string {
  const lines: string[] = [];
  for (const w of report.warnings) lines.push(`warning: ${w.file}: ${w.reason}`);
  for (const e of report.errors) lines.push(`error: ${e.file}: ${e.reason}`);
  const verdict = report.ok
    ? `${name}: OK — ${report.casesChecked} case(s) checked, ${report.warnings.length} warning(s)`
    : `${name}: FAILED — ${report.errors.length} problem(s) in ${report.casesChecked} case(s), ${report.warnings.length} warning(s)`;
  lines.push(verdict);
  return lines.join('\n');
}

export const verifyDatasetIntegrityCommand: Command = {
  spec: {
    name: 'verify_dataset_integrity',
    summary: 'check a raw dataset for every problem nnU-Net would refuse (lists all of them)',
    description:
      'Checks dataset.json, case files, label values, shapes, spacings, channel counts and NaNs of a raw dataset ' +
      '(nnU-Net v2 verify_dataset_integrity). Every problem is listed with its file; the exit code is 1 when any is found.',
    options: [
      { flags: ['-d'], dest: 'dataset', help: 'dataset id (e.g. 4) or folder name (e.g. Dataset004_Hippocampus)', required: true, metavar: 'DATASET' },
      { flags: ['-np'], dest: 'np', type: 'int', default: 4, help: 'cases read in parallel' },
      { flags: ['--json'], dest: 'json', type: 'flag', help: 'print the report as JSON' },
    ],
  },
  async run(args, io) {
    const roots = dataRoots(io.env);
    const dataset = findDataset(String(args.dataset), roots.raw);
    const report = await verifyDatasetIntegrity(dataset.folder, { concurrency: args.np as number, env: io.env });
    io.stdout(args.json ? JSON.stringify({ dataset: dataset.name, ...report }, null, 2) : formatReport(dataset.name, report));
    return report.ok ? EXIT.ok : EXIT.failed;
  },
};
