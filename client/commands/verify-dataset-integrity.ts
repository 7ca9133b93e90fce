// `nnunet verify_dataset_integrity -d ID`: nnU-Net v2's integrity check as its own command
// (nnU-Net only runs it inside plan_and_preprocess), run by the server on its raw dataset
// (DatasetService.VerifyDataset); lists every problem, exits 1 if any.
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import type { VerifyReport } from '../sdk/index.js';
import { EXIT, type Command } from './types.js';

function formatReport(name: string, report: VerifyReport): string {
  const lines: string[] = [];
  for (const w of report.warnings) lines.push(`warning: ${w.file}: ${w.reason}`);
  for (const e of report.errors) lines.push(`error: ${e.file}: ${e.reason}`);
  const verdict = report.ok
    ? `${name}: OK — ${report.cases_checked} case(s) checked, ${report.warnings.length} warning(s)`
    : `${name}: FAILED — ${report.errors.length} problem(s) in ${report.cases_checked} case(s), ${report.warnings.length} warning(s)`;
  lines.push(verdict);
  return lines.join('\n');
}

export const verifyDatasetIntegrityCommand: Command = {
  spec: {
    name: 'verify_dataset_integrity',
    summary: 'check a raw dataset for every problem nnU-Net would refuse (lists all of them)',
    description:
      'Checks dataset.json, case files, label values, shapes, spacings, channel counts and NaNs of a raw dataset ' +
      '(nnU-Net v2 verify_dataset_integrity) in the raw data root of the server. Every problem is listed with its file; ' +
      'the exit code is 1 when any is found.',
    options: [
      { flags: ['-d'], dest: 'dataset', help: 'dataset id (e.g. 4) or folder name (e.g. Dataset004_Hippocampus)', required: true, metavar: 'DATASET' },
      { flags: ['-np'], dest: 'np', type: 'int', default: 4, help: 'accepted for compatibility (the server decides how many cases it reads at once)' },
      { flags: ['--json'], dest: 'json', type: 'flag', help: 'print the report as JSON' },
      ...SERVER_OPTIONS,
    ],
  },
  async run(args, io) {
    return withConnection(args, io, async ({ client }) => {
      const ref = String(args.dataset);
      const report = await client.verifyDataset(ref);
      // The folder name for the verdict line; a dataset.json too broken to read still has its report.
      const name = await client.getDataset(ref).then(
        (d) => d.name,
        () => ref,
      );
      const { cases_checked: casesChecked, ok, errors, warnings } = report;
      io.stdout(args.json ? JSON.stringify({ dataset: name, ok, errors, warnings, casesChecked }, null, 2) : formatReport(name, report));
      return report.ok ? EXIT.ok : EXIT.failed;
    });
  },
};
