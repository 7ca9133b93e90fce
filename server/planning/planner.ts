// Experiment planning from a fingerprint (nnU-Net v2 ExperimentPlanner.plan_experiment, REFERENCE
// §3.5): transpose, 3d_fullres, the 3d_lowres search (spacing x1.03 per step, coarse axes first,
// dropped unless the images get >= 2x smaller), 2d, and the 3d_cascade_fullres link. Pure: data in,
// plans out; the command layer reads and writes the files.
import { DatasetError } from '../dataset/errors.js';
import type { DatasetJson } from '../dataset/dataset-json.js';
import { planConfiguration, type PlanningContext } from './configuration.js';
import type { DatasetFingerprint } from './fingerprint.js';
import { planNormalization } from './normalization.js';
import { medianPerAxis, product, roundHalfEven } from './numeric.js';
import type { Configuration, Plans, StoredConfiguration } from './plans.js';
import { plannerPreset, type PlannerPreset } from './presets.js';
import { computeNewShape, determineTranspose, fullresTargetSpacing, transpose } from './target-spacing.js';

/** Create 3d_lowres when the fullres patch covers less than this fraction of the median image. */
const LOWRES_CREATION_THRESHOLD = 0.25;
/** Lowres spacing grows by this factor per step ("used to be 1.01"). */
const SPACING_INCREASE_FACTOR = 1.03;

export interface PlanOptions {
  /** -pl: ExperimentPlanner (default) or a ResEnc preset. */
  planner?: string;
  /** -gpu_memory_target in GB; default the preset's. */
  gpuMemoryTargetGB?: number;
  /** -overwrite_target_spacing, in the reader's axis order (not transposed). */
  overwriteTargetSpacing?: number[];
  /** -overwrite_plans_name. */
  plansName?: string;
  preprocessorName?: string;
  /** Reader class recorded in the plans; default from dataset.json or the file ending. */
  imageReaderWriter?: string;
}

/** What nnU-Net's reader registry would pick: the dataset.json override, else by file ending. */
export function imageReaderWriterFor(json: Pick<DatasetJson, 'file_ending' | 'overwrite_image_reader_writer'>): string {
  if (typeof json.overwrite_image_reader_writer === 'string' && json.overwrite_image_reader_writer) return json.overwrite_image_reader_writer;
  const ending = json.file_ending.toLowerCase();
  if (['.png', '.bmp', '.tif', '.jpg', '.jpeg'].includes(ending)) return 'NaturalImage2DIO';
  return 'SimpleITKIO';
}

function checkInputs(fp: DatasetFingerprint, json: DatasetJson, options: PlanOptions): void {
  const n = fp.spacings.length;
  if (n === 0 || fp.shapes_after_crop.length !== n) throw new DatasetError(`the fingerprint must list a shape and a spacing per case (${fp.shapes_after_crop.length} shapes, ${n} spacings)`);
  fp.spacings.forEach((s, i) => {
    if (s.length !== 3 || !s.every((x) => Number.isFinite(x) && x > 0)) throw new DatasetError(`fingerprint spacings[${i}] must be 3 positive numbers, got [${s.join(', ')}]`);
  });
  fp.shapes_after_crop.forEach((s, i) => {
    if (s.length !== 3 || !s.every((x) => Number.isInteger(x) && x > 0)) throw new DatasetError(`fingerprint shapes_after_crop[${i}] must be 3 positive integers, got [${s.join(', ')}]`);
  });
  const channels = Object.keys(json.channel_names).length;
  const withStats = Object.keys(fp.foreground_intensity_properties_per_channel).length;
  if (withStats !== channels) throw new DatasetError(`the fingerprint has intensity statistics for ${withStats} channel(s) but dataset.json lists ${channels}`);
  if (!(json.numTraining > 0)) throw new DatasetError(`dataset.json numTraining must be positive, got ${json.numTraining}`);
  const t = options.overwriteTargetSpacing;
  if (t && (t.length !== 3 || !t.every((x) => Number.isFinite(x) && x > 0))) throw new DatasetError(`-overwrite_target_spacing needs 3 positive numbers, got [${t.join(', ')}]`);
  const gb = options.gpuMemoryTargetGB;
  if (gb !== undefined && !(Number.isFinite(gb) && gb > 0)) throw new DatasetError(`-gpu_memory_target must be a positive number of GB, got ${gb}`);
}

function dataIdentifier(preset: PlannerPreset, plansName: string, configuration: string): string {
  if (preset.sharesDefaultData && (configuration === '2d' || configuration === '3d_fullres')) return `nnUNetPlans_${configuration}`;
  return `${plansName}_${configuration}`;
}

/** Searches the 3d_lowres configuration; undefined when it is not needed or not worth it. */
function planLowres(ctx: PlanningContext, fullres: Configuration, medianShape: number[], numTraining: number, identifier: string) {
  const fullresSpacing = fullres.spacing;
  let lowresSpacing = [...fullresSpacing];
  let medianVoxels = product(medianShape);
  let patchVoxels = product(fullres.patch_size);
  let lowres: Configuration | undefined;
  while (patchVoxels / medianVoxels < LOWRES_CREATION_THRESHOLD) {
    // Coarsen the finely sampled axes first until all are within 2x of the coarsest.
    const maxSpacing = Math.max(...lowresSpacing);
    const fine = lowresSpacing.map((s) => maxSpacing / s > 2);
    const anyFine = fine.some(Boolean);
    lowresSpacing = lowresSpacing.map((s, i) => (!anyFine || fine[i] ? s * SPACING_INCREASE_FACTOR : s));
    const shape = fullresSpacing.map((s, i) => (s / lowresSpacing[i]) * medianShape[i]);
    medianVoxels = product(shape);
    lowres = planConfiguration(ctx, lowresSpacing, shape.map(roundHalfEven), identifier, medianVoxels * numTraining);
    patchVoxels = product(lowres.patch_size);
  }
  // Not worth a cascade if the lowres images are less than 2x smaller.
  if (product(medianShape) / medianVoxels < 2) return undefined;
  return lowres;
}

/** Plans every configuration of a dataset from its fingerprint and dataset.json. */
export function planExperiment(datasetName: string, fp: DatasetFingerprint, json: DatasetJson, options: PlanOptions = {}): Plans {
  checkInputs(fp, json, options);
  const preset = plannerPreset(options.planner ?? 'ExperimentPlanner');
  const plansName = options.plansName ?? preset.plansName;
  const useMaskFromJson = Boolean(json.use_mask_for_norm);
  const ctx: PlanningContext = {
    preset,
    gpuMemoryTargetGB: options.gpuMemoryTargetGB ?? preset.defaultGpuMemoryTargetGB,
    numClasses: Object.keys(json.labels).length,
    normalization: planNormalization(json.channel_names, fp.median_relative_size_after_cropping, useMaskFromJson),
    preprocessorName: options.preprocessorName ?? 'DefaultPreprocessor',
    estimateCache: new Map(),
  };

  const targetSpacing = options.overwriteTargetSpacing ? [...options.overwriteTargetSpacing] : fullresTargetSpacing(fp.spacings, fp.shapes_after_crop);
  const { forward, backward } = determineTranspose(targetSpacing);
  const fullresSpacing = transpose(targetSpacing, forward);
  const newShapes = fp.spacings.map((s, i) => computeNewShape(fp.shapes_after_crop[i], s, targetSpacing));
  const medianShape = transpose(medianPerAxis(newShapes), forward);
  const approxVoxels = product(medianShape) * json.numTraining;

  let fullres: Configuration | undefined;
  let lowres: Configuration | undefined;
  if (medianShape[0] !== 1) {
    const planned = planConfiguration(ctx, fullresSpacing, medianShape, dataIdentifier(preset, plansName, '3d_fullres'), approxVoxels);
    const low = planLowres(ctx, planned, medianShape, json.numTraining, dataIdentifier(preset, plansName, '3d_lowres'));
    // batch_dice follows nnU-Net's historical rule: on for fullres only when a cascade exists.
    fullres = { ...planned, batch_dice: low !== undefined };
    if (low) lowres = { ...low, batch_dice: false };
  }
  const plan2d: Configuration = {
    ...planConfiguration(ctx, fullresSpacing.slice(1), medianShape.slice(1), dataIdentifier(preset, plansName, '2d'), approxVoxels),
    batch_dice: true,
  };

  const configurations: Record<string, StoredConfiguration> = { '2d': plan2d };
  if (lowres) configurations['3d_lowres'] = fullres ? { ...lowres, next_stage: '3d_cascade_fullres' } : lowres;
  if (fullres) {
    configurations['3d_fullres'] = fullres;
    if (lowres) configurations['3d_cascade_fullres'] = { inherits_from: '3d_fullres', previous_stage: '3d_lowres' };
  }

  return {
    dataset_name: datasetName,
    plans_name: plansName,
    original_median_spacing_after_transp: transpose(medianPerAxis(fp.spacings), forward),
    original_median_shape_after_transp: transpose(medianPerAxis(fp.shapes_after_crop), forward).map(roundHalfEven),
    image_reader_writer: options.imageReaderWriter ?? imageReaderWriterFor(json),
    transpose_forward: forward,
    transpose_backward: backward,
    configurations,
    experiment_planner_used: preset.name,
    label_manager: 'LabelManager',
    foreground_intensity_properties_per_channel: structuredClone(fp.foreground_intensity_properties_per_channel),
  };
}
