// `nnunet plan_and_preprocess -d ID [...]`: nnUNetv2_plan_and_preprocess = extract_fingerprint
// (+ integrity check) → plan_experiment → preprocess, with nnU-Net's flags. The command asks the
// server for a PlanAndPreprocess job per dataset and shows its output; the job runs
// planAndPreprocessLocally below, which composes the three local commands so each step behaves
// exactly as when run on its own. Flags the RPC does not carry (a custom target spacing or plans
// name, --clean, --no_pp) are refused with the local commands that take them.
import { availableParallelism } from 'node:os';
import { PLANNER_PRESETS } from '../../server/planning/index.js';
import { UsageError, type ParsedArgs } from '../args.js';
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import { extractFingerprintCommand } from './extract-fingerprint.js';
import { followJob } from './jobs.js';
import { planExperimentCommand } from './plan-experiment.js';
import { preprocessCommand } from './preprocess.js';
import { EXIT, type Command, type CommandIO } from './types.js';

/** The three steps in this process, on the data roots of `io.env` (what the server's job runs). */
export async function planAndPreprocessLocally(args: ParsedArgs, io: CommandIO): Promise<number> {
  const datasets = args.datasets as string[];
  let code = await extractFingerprintCommand.run({ datasets, np: args.npfp, clean: args.clean, verify: args.verify, verbose: args.verbose }, io);
  if (code !== EXIT.ok) return code;
  code = await planExperimentCommand.run(
    { datasets, planner: args.planner, gpuMemoryTarget: args.gpuMemoryTarget, targetSpacing: args.targetSpacing, plansName: args.plansName, preprocessorName: 'DefaultPreprocessor' },
    io,
  );
  if (code !== EXIT.ok || args.noPp) return code;
  const plansName = args.plansName ?? PLANNER_PRESETS[args.planner as string].plansName;
  return preprocessCommand.run({ dataset: datasets, plansName, configurations: args.configurations, np: args.np, verbose: args.verbose }, io);
}

/** Flags PlanAndPreprocess cannot carry, with the local commands that take them. */
const LOCAL_ONLY: [string, string, string][] = [
  ['targetSpacing', '-overwrite_target_spacing', 'nnunet plan_experiment -overwrite_target_spacing ...'],
  ['plansName', '-overwrite_plans_name', 'nnunet plan_experiment -overwrite_plans_name ... then nnunet preprocess -plans_name ...'],
  ['clean', '--clean', 'nnunet extract_fingerprint --clean'],
  ['noPp', '--no_pp', 'nnunet extract_fingerprint then nnunet plan_experiment'],
];

export const planAndPreprocessCommand: Command = {
  spec: {
    name: 'plan_and_preprocess',
    summary: 'fingerprint + experiment planning + preprocessing of a raw dataset',
    description:
      'Runs extract_fingerprint, plan_experiment and preprocess in sequence (nnUNetv2_plan_and_preprocess). ' +
      'With --verify_dataset_integrity the raw dataset is checked first and every problem listed.',
    options: [
      { flags: ['-d'], dest: 'datasets', nargs: '+', required: true, help: 'dataset id(s) or folder name(s)', metavar: 'DATASET' },
      { flags: ['-pl'], dest: 'planner', default: 'ExperimentPlanner', choices: Object.keys(PLANNER_PRESETS), help: 'planner' },
      { flags: ['-gpu_memory_target'], dest: 'gpuMemoryTarget', type: 'float', help: 'GPU memory target in GB' },
      { flags: ['-overwrite_target_spacing'], dest: 'targetSpacing', type: 'float', nargs: '+', help: 'fullres target spacing (3 numbers)', metavar: 'SPACING' },
      { flags: ['-overwrite_plans_name'], dest: 'plansName', help: 'plans name' },
      { flags: ['-c'], dest: 'configurations', nargs: '+', default: ['2d', '3d_fullres', '3d_lowres'], help: 'configurations to preprocess', metavar: 'CONFIG' },
      { flags: ['-np'], dest: 'np', type: 'int', nargs: '+', help: 'preprocessing workers (one value or one per configuration)' },
      { flags: ['-npfp'], dest: 'npfp', type: 'int', default: Math.min(8, availableParallelism()), help: 'fingerprint workers' },
      { flags: ['--verify_dataset_integrity'], dest: 'verify', type: 'flag', help: 'check the raw dataset first' },
      { flags: ['--clean'], dest: 'clean', type: 'flag', help: 'recompute the fingerprint even if it exists' },
      { flags: ['--no_pp'], dest: 'noPp', type: 'flag', help: 'plan only, do not preprocess' },
      { flags: ['--verbose'], dest: 'verbose', type: 'flag', help: 'more output' },
      ...SERVER_OPTIONS,
    ],
  },
  async run(args, io) {
    for (const [dest, flag, local] of LOCAL_ONLY) {
      if (args[dest] !== undefined && args[dest] !== false) {
        throw new UsageError(`${flag} is not carried by the server's PlanAndPreprocess; run the steps with the commands that take it (they work on local folders): ${local}`, 'plan_and_preprocess');
      }
    }
    const np = args.np as number[] | undefined;
    if (np && new Set(np).size > 1) throw new UsageError('-np: the server takes one worker count for every configuration; give one value (or run nnunet preprocess -np ... locally)', 'plan_and_preprocess');
    return withConnection(args, io, async ({ client }, signal) => {
      for (const dataset of args.datasets as string[]) {
        const job = await client.planAndPreprocess({
          dataset,
          configurations: args.configurations as string[],
          planner: String(args.planner),
          gpu_memory_target_gb: (args.gpuMemoryTarget as number | undefined) ?? 0,
          num_processes: np?.[0] ?? (args.npfp as number),
          verify_dataset_integrity: Boolean(args.verify),
        });
        await followJob(client, job, { signal, label: `plan_and_preprocess ${dataset}`, onLog: (m) => io.stdout(m) });
      }
      return EXIT.ok;
    });
  },
};
