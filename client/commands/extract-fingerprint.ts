// `nnunet extract_fingerprint -d ID [...]`: nnUNetv2_extract_fingerprint. Writes
// nnUNet_preprocessed/DatasetXXX/dataset_fingerprint.json; an existing one is kept unless --clean.
import { availableParallelism } from 'node:os';
import { dataRoots, findDataset, verifyDatasetIntegrity } from '../../server/dataset/index.js';
import { extractFingerprint } from '../../server/planning/index.js';
import { EXIT, type Command } from './types.js';

export const extractFingerprintCommand: Command = {
  spec: {
    name: 'extract_fingerprint',
    summary: 'dataset fingerprint: crop sizes, spacings, foreground intensity statistics',
    description:
      'Extracts the dataset fingerprint nnU-Net plans from (nnUNetv2_extract_fingerprint): per case the shape after ' +
      'cropping to the nonzero region and the spacing, and foreground intensity statistics per channel. Writes ' +
      'nnUNet_preprocessed/DatasetXXX_Name/dataset_fingerprint.json; an existing file is reused unless --clean.',
    options: [
      { flags: ['-d'], dest: 'datasets', nargs: '+', required: true, help: 'dataset id(s) or folder name(s)', metavar: 'DATASET' },
      { flags: ['-np'], dest: 'np', type: 'int', default: Math.min(8, availableParallelism()), help: 'cases analysed in parallel (worker threads)' },
      { flags: ['--clean'], dest: 'clean', type: 'flag', help: 'recompute even if a fingerprint exists' },
      { flags: ['--verify_dataset_integrity'], dest: 'verify', type: 'flag', help: 'check the raw dataset first and stop on problems' },
      { flags: ['--verbose'], dest: 'verbose', type: 'flag', help: 'print progress per case' },
    ],
  },
  async run(args, io) {
    const roots = dataRoots(io.env);
    const np = args.np as number;
    if (!(np >= 1)) {
      io.stderr('error: -np must be at least 1');
      return EXIT.usage;
    }
    for (const id of args.datasets as string[]) {
      const dataset = findDataset(id, roots.raw);
      if (args.verify) {
        const report = await verifyDatasetIntegrity(dataset.folder, { concurrency: np, env: io.env });
        if (!report.ok) {
          for (const e of report.errors) io.stderr(`error: ${e.file}: ${e.reason}`);
          io.stderr(`${dataset.name}: integrity check failed with ${report.errors.length} problem(s); fix them before extracting the fingerprint`);
          return EXIT.failed;
        }
        io.stdout(`${dataset.name}: integrity check passed (${report.casesChecked} case(s))`);
      }
      const result = await extractFingerprint(dataset.name, {
        numProcesses: np,
        clean: Boolean(args.clean),
        env: io.env,
        onCase: args.verbose ? (done, total, caseId) => io.stdout(`  ${done}/${total} ${caseId}`) : undefined,
      });
      const verb = result.computed ? 'wrote' : 'kept existing';
      io.stdout(`${result.datasetName}: ${verb} ${result.file} (${result.fingerprint.spacings.length} case(s))`);
    }
    return EXIT.ok;
  },
};
