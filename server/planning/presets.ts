// The experiment planners as data (REFERENCE §3.1, §3.6): nnU-Net's ExperimentPlanner and its ResEnc
// subclasses differ only in these constants, so each is one object instead of a subclass.
import { DatasetError } from '../dataset/errors.js';

export interface PlannerPreset {
  /** The class name nnU-Net records in `experiment_planner_used` and accepts after `-pl`. */
  name: string;
  plansName: string;
  network: 'PlainConvUNet' | 'ResidualEncoderUNet';
  networkClassName: string;
  /** Feature-map estimate that fits `referenceGB` at the reference batch size. */
  referenceVal3d: number;
  referenceVal2d: number;
  referenceGB: number;
  defaultGpuMemoryTargetGB: number;
  referenceBatchSize3d: number;
  referenceBatchSize2d: number;
  /** Convs (plain) or residual blocks per encoder stage; sliced to the number of stages. */
  encoderDepth: readonly number[];
  decoderConvs: readonly number[];
  /** Name of the encoder-depth keyword in arch_kwargs. */
  encoderDepthKey: 'n_conv_per_stage' | 'n_blocks_per_stage';
  /** A batch may cover at most this fraction of the dataset's voxels. */
  maxDatasetCovered: number;
  /**
   * ExperimentPlanner shrinks while estimate / ref_bs * 2 > reference (so 2D allows 6x the
   * reference), the ResEnc planners while estimate > reference.
   */
  shrinkRule: 'per-sample' | 'absolute';
  /** ResEnc planners reuse the default planner's 2d and 3d_fullres data. */
  sharesDefaultData: boolean;
}

const PLAIN: PlannerPreset = {
  name: 'ExperimentPlanner',
  plansName: 'nnUNetPlans',
  network: 'PlainConvUNet',
  networkClassName: 'dynamic_network_architectures.architectures.unet.PlainConvUNet',
  referenceVal3d: 560_000_000,
  referenceVal2d: 85_000_000,
  referenceGB: 8,
  defaultGpuMemoryTargetGB: 8,
  referenceBatchSize3d: 2,
  referenceBatchSize2d: 12,
  encoderDepth: new Array<number>(14).fill(2),
  decoderConvs: new Array<number>(13).fill(2),
  encoderDepthKey: 'n_conv_per_stage',
  maxDatasetCovered: 0.05,
  shrinkRule: 'per-sample',
  sharesDefaultData: false,
};

const RESENC: PlannerPreset = {
  ...PLAIN,
  name: 'ResEncUNetPlanner',
  plansName: 'nnUNetResEncUNetPlans',
  network: 'ResidualEncoderUNet',
  networkClassName: 'dynamic_network_architectures.architectures.unet.ResidualEncoderUNet',
  referenceVal3d: 680_000_000,
  referenceVal2d: 135_000_000,
  encoderDepth: [1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6],
  decoderConvs: new Array<number>(12).fill(1),
  encoderDepthKey: 'n_blocks_per_stage',
  shrinkRule: 'absolute',
  sharesDefaultData: true,
};

export const PLANNER_PRESETS: Record<string, PlannerPreset> = {
  ExperimentPlanner: PLAIN,
  ResEncUNetPlanner: RESENC,
  nnUNetPlannerResEncM: { ...RESENC, name: 'nnUNetPlannerResEncM', plansName: 'nnUNetResEncUNetMPlans', maxDatasetCovered: 1 },
  nnUNetPlannerResEncL: {
    ...RESENC,
    name: 'nnUNetPlannerResEncL',
    plansName: 'nnUNetResEncUNetLPlans',
    referenceVal3d: 2_100_000_000,
    referenceVal2d: 380_000_000,
    referenceGB: 24,
    defaultGpuMemoryTargetGB: 24,
    maxDatasetCovered: 1,
  },
  nnUNetPlannerResEncXL: {
    ...RESENC,
    name: 'nnUNetPlannerResEncXL',
    plansName: 'nnUNetResEncUNetXLPlans',
    referenceVal3d: 3_600_000_000,
    referenceVal2d: 560_000_000,
    referenceGB: 40,
    defaultGpuMemoryTargetGB: 40,
    maxDatasetCovered: 1,
  },
};

export function plannerPreset(name: string): PlannerPreset {
  const preset = PLANNER_PRESETS[name];
  if (!preset) throw new DatasetError(`unknown planner "${name}"; choose one of ${Object.keys(PLANNER_PRESETS).join(', ')}`);
  return preset;
}
