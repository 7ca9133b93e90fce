// `nnunet plan_experiment -d ID [...]`: nnUNetv2_plan_experiment. Plans 2d / 3d_fullres / 3d_lowres /
// 3d_cascade_fullres from the fingerprint and writes nnUNet_preprocessed/DatasetXXX/<plans_name>.json.
import { dataRoots, findDataset } from '../../server/dataset/index.js';
import { PLANNER_PRESETS, getConfiguration, planDataset, type Configuration } from '../../server/planning/index.js';
import { EXIT, type Command } from './types.js';

function describe(name: string, c: Configuration): string {
  const kw = c.architecture.arch_kwargs;
  return `  ${name}: patch ${c.patch_size.join('x')}, batch ${c.batch_size}, spacing ${c.spacing.map((s) => +s.toFixed(4)).join('x')}, ${kw.n_stages} stages`;
}

export const planExperimentCommand: Command = {
  spec: {
    name: 'plan_experiment',
    summary: 'experiment planning: configurations, patch and batch sizes, network topology',
    description:
      'Plans the configurations of a dataset from its fingerprint (nnUNetv2_plan_experiment) and writes ' +
      'nnUNet_preprocessed/DatasetXXX_Name/<plans_name>.json plus a copy of dataset.json. Run extract_fingerprint first.',
    options: [
      { flags: ['-d'], dest: 'datasets', nargs: '+', required: true, help: 'dataset id(s) or folder name(s)', metavar: 'DATASET' },
      { flags: ['-pl'], dest: 'planner', default: 'ExperimentPlanner', choices: Object.keys(PLANNER_PRESETS), help: 'planner (ResEnc presets: nnUNetPlannerResEncM/L/XL)' },
      { flags: ['-gpu_memory_target'], dest: 'gpuMemoryTarget', type: 'float', help: 'GPU memory target in GB (default: the planner\'s, 8 / 24 / 40)' },
      { flags: ['-overwrite_target_spacing'], dest: 'targetSpacing', type: 'float', nargs: '+', help: 'fullres target spacing, 3 numbers in the image axis order', metavar: 'SPACING' },
      { flags: ['-overwrite_plans_name'], dest: 'plansName', help: 'plans name (file name and data identifiers)' },
      { flags: ['-preprocessor_name'], dest: 'preprocessorName', default: 'DefaultPreprocessor', help: 'preprocessor recorded in the plans' },
    ],
  },
  async run(args, io) {
    const spacing = args.targetSpacing as number[] | undefined;
    if (spacing && (spacing.length !== 3 || !spacing.every((s) => s > 0))) {
      io.stderr('error: -overwrite_target_spacing needs 3 positive numbers');
      return EXIT.usage;
    }
    const gb = args.gpuMemoryTarget as number | undefined;
    if (gb !== undefined && !(gb > 0)) {
      io.stderr('error: -gpu_memory_target must be a positive number of GB');
      return EXIT.usage;
    }
    const plansName = args.plansName as string | undefined;
    if (plansName !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(plansName)) {
      io.stderr('error: -overwrite_plans_name may only contain letters, digits, "_", "." and "-"');
      return EXIT.usage;
    }
    const roots = dataRoots(io.env);
    for (const id of args.datasets as string[]) {
      const dataset = findDataset(id, roots.raw);
      const result = await planDataset(dataset.name, {
        planner: args.planner as string,
        gpuMemoryTargetGB: gb,
        overwriteTargetSpacing: spacing,
        plansName,
        preprocessorName: args.preprocessorName as string,
        env: io.env,
      });
      const lines = [`${result.datasetName}: wrote ${result.file}`];
      for (const name of Object.keys(result.plans.configurations)) {
        if (!result.keptConfigurations.includes(name)) lines.push(describe(name, getConfiguration(result.plans, name)));
      }
      if (result.keptConfigurations.length > 0) lines.push(`  kept custom configuration(s): ${result.keptConfigurations.join(', ')}`);
      io.stdout(lines.join('\n'));
    }
    return EXIT.ok;
  },
};
