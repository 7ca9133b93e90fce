// Experiment planning: dataset fingerprint, the planner (2d, 3d_fullres, 3d_lowres, cascade; default
// and ResEnc presets) and the one Plans type every later stage reads.
export { extractFingerprint, loadFingerprint, saveFingerprint, parseFingerprint, formatFingerprint, combineCases, intensityStatistics } from './fingerprint.js';
export type { DatasetFingerprint, ExtractOptions, ExtractResult } from './fingerprint.js';
export { analyzeCase } from './fingerprint-case.js';
export type { CaseFingerprint, IntensityHistogram } from './fingerprint-case.js';
export { planExperiment, imageReaderWriterFor } from './planner.js';
export type { PlanOptions } from './planner.js';
export { planDataset } from './experiment.js';
export type { PlanDatasetResult } from './experiment.js';
export { PLANNER_PRESETS, plannerPreset } from './presets.js';
export type { PlannerPreset } from './presets.js';
export { parsePlans, getConfiguration, configurationNames, loadPlans, savePlans, formatPlans } from './plans.js';
export type { Plans, Configuration, StoredConfiguration, Architecture, ArchitectureKwargs, ResamplingKwargs, IntensityProperties } from './plans.js';
export { computeNewShape, fullresTargetSpacing, determineTranspose, ANISO_THRESHOLD } from './target-spacing.js';
export { normalizationSchemeFor, planNormalization } from './normalization.js';
export type { NormalizationScheme } from './normalization.js';
export { getPoolAndConvProps } from './topology.js';
export { convFeatureMapSize } from './vram.js';
export { roundHalfEven, percentile, median } from './numeric.js';
