// `nnunet plan_and_preprocess -d ID [...]`: nnUNetv2_plan_and_preprocess = extract_fingerprint
// (+ integrity check) → plan_experiment → preprocess, with nnU-Net's flags. It composes the three
// commands so each step behaves exactly as when run on its own.
import { availableParallelism } from 'node:os';
import { PLANNER_PRESETS } from '../../server/planning/index.js';
import { extractFingerprintCommand } from './extract-fingerprint.js';
import { planExperimentCommand } from './plan-experiment.js';
import { preprocessCommand } from './preprocess.js';
import { EXIT, type Command } from './types.js';

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
    ],
  },
  async run(args, io) {
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
  },
};
