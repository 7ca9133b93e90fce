// Raw datasets: roots and lookup, dataset.json, case discovery, label semantics, integrity checks.
export { dataRoots, findDataset, listDatasets, datasetFolderName, parseDatasetFolderName } from './paths.js';
export type { DataRoots, DatasetLocation } from './paths.js';
export { loadDatasetJson, parseDatasetJson, readDatasetJsonFile } from './dataset-json.js';
export type { DatasetJson, LabelValue, CaseFiles, ParsedDatasetJson } from './dataset-json.js';
export { discoverTrainingCases, discoverImageCases, caseIdsInFolder, channelFiles } from './cases.js';
export type { RawCase } from './cases.js';
export { LabelManager } from './labels.js';
export { verifyDatasetIntegrity } from './integrity.js';
export type { IntegrityReport, Problem, VerifyOptions } from './integrity.js';
export { DatasetError } from './errors.js';
