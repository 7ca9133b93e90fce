// The command table of `nnunet`: what exists now, and nnU-Net's other commands with what they still need.
import { demoCommand } from './demo.js';
import { ensembleCommand } from './ensemble.js';
import { evaluateFolderCommand, evaluateSimpleCommand } from './evaluate.js';
import { extractFingerprintCommand } from './extract-fingerprint.js';
import { findBestConfigurationCommand } from './find-best-configuration.js';
import { applyPostprocessingCommand, determinePostprocessingCommand } from './postprocessing.js';
import { exportModelToZipCommand } from './export-model.js';
import { installModelFromZipCommand } from './install-model.js';
import { listModelsCommand } from './list-models.js';
import { planAndPreprocessCommand } from './plan-and-preprocess.js';
import { planExperimentCommand } from './plan-experiment.js';
import { predictCommand, predictFromModelFolderCommand } from './predict.js';
import { predictDicomwebCommand } from './predict-dicomweb.js';
import { preprocessCommand } from './preprocess.js';
import { downloadPretrainedModelByUrlCommand, downloadPretrainedModelCommand, printAvailablePretrainedModelsCommand } from './pretrained.js';
import { serveCommand } from './serve.js';
import { trainCommand } from './train.js';
import type { Command, PlannedCommand } from './types.js';
import { verifyDatasetIntegrityCommand } from './verify-dataset-integrity.js';

export const COMMANDS: Command[] = [
  verifyDatasetIntegrityCommand,
  extractFingerprintCommand,
  planExperimentCommand,
  preprocessCommand,
  planAndPreprocessCommand,
  trainCommand,
  predictCommand,
  predictFromModelFolderCommand,
  predictDicomwebCommand,
  evaluateFolderCommand,
  evaluateSimpleCommand,
  determinePostprocessingCommand,
  applyPostprocessingCommand,
  ensembleCommand,
  findBestConfigurationCommand,
  installModelFromZipCommand,
  printAvailablePretrainedModelsCommand,
  downloadPretrainedModelCommand,
  downloadPretrainedModelByUrlCommand,
  exportModelToZipCommand,
  listModelsCommand,
  serveCommand,
  demoCommand,
];

/** nnU-Net v2 commands (same names without the `nnUNetv2_` prefix) that this version cannot run yet. */
export const PLANNED: PlannedCommand[] = [];
