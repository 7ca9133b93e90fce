// Preprocessing: resampling, normalisation, the per-case pipeline (shared by training and
// inference) and the dataset-level run in a worker pool.
export {
  computeNewShape,
  determineSeparateZ,
  pythonRound,
  resampleDataToShape,
  resampleLogitsToShape,
  resampleOptionsFromKwargs,
} from './resampling.js';
export { resampleSegToShape } from './segmentation-resampling.js';
export type { ResampleOptions, SeparateZ } from './resampling.js';
export { normalizationSchemeForChannel, normalizeChannel, parseNormalizationScheme, supportsMaskForNorm } from './normalization.js';
export type { NormalizationScheme } from './normalization.js';
export { preprocessCase, classesToSample } from './preprocessor.js';
export type { CaseInput, CaseProperties, PreprocessedCase, PreprocessOptions } from './preprocessor.js';
export { sampleClassLocations } from './class-locations.js';
export type { ClassLocations } from './class-locations.js';
export { readRawCase, preprocessedCaseFiles } from './case-files.js';
export { preprocessDataset, resolveNumProcesses, DEFAULT_NUM_PROCESSES } from './preprocess-dataset.js';
export type { PreprocessDatasetOptions, PreprocessDatasetResult, PreprocessProgress } from './preprocess-dataset.js';
