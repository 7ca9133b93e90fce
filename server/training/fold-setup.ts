// Everything a fold needs before its first iteration, as nnUNetTrainer.__init__/initialize/
// do_split/on_train_start gather it: plans and configuration, labels, the trainer's options, the
// split, the augmentation geometry, the folders; and the model-folder copies (plans.json,
// dataset.json, dataset_fingerprint.json) that inference reads later.
import { copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import { LabelManager } from '../dataset/labels.js';
import type { DatasetJson } from '../dataset/dataset-json.js';
import { writeFileAtomic } from '../io/atomic.js';
import { getConfiguration, loadPlans, savePlans, type Configuration, type Plans } from '../planning/plans.js';
import { loadOrCreateSplits, splitForFold, type Split } from './splits.js';
import { resolveTrainer, type ResolvedTrainer } from './custom-trainer.js';
import { foldPaths, locateDataset, preprocessedCaseIds, readTrainingDatasetJson, type FoldPaths } from './fold-paths.js';
import { augmentationGeometry, type AugmentationGeometry } from './rotation-config.js';
import type { TrainerOptions } from './trainer-options.js';

export interface FoldRequest {
  dataset: string;
  configuration: string;
  fold: number | 'all';
  /** Built-in trainer name or a trainer module path (default nnUNetTrainer). */
  trainer?: string;
  /** Plans identifier (default nnUNetPlans). */
  plans?: string;
  /** Command-line overrides (--num_epochs ...), applied over the trainer's options. */
  overrides?: Partial<TrainerOptions>;
  env?: NodeJS.ProcessEnv;
}

export interface FoldSetup {
  paths: FoldPaths;
  plansName: string;
  plans: Plans;
  configurationName: string;
  configuration: Configuration;
  datasetJson: DatasetJson;
  labels: LabelManager;
  trainer: ResolvedTrainer;
  geometry: AugmentationGeometry;
  /** nnUNet_preprocessed/DatasetXXX/<data_identifier> */
  dataFolder: string;
  caseIds: string[];
  split: Split;
  /** Lines for the log (nnU-Net's do_split messages). */
  splitMessages: string[];
  /** Previous-stage segmentations for a cascade configuration, else null. */
  previousStageFolder: string | null;
}

export async function setUpFold(r: FoldRequest): Promise<FoldSetup> {
  const env = r.env ?? process.env;
  const plansName = r.plans ?? 'nnUNetPlans';
  const located = locateDataset(r.dataset, env);
  const plansFile = join(located.preprocessedBase, `${plansName}.json`);
  if (!existsSync(plansFile)) throw new DatasetError(`plans ${plansName} not found: run plan_experiment (and preprocess) first`, plansFile);
  const plans = await loadPlans(plansFile);
  const configuration = getConfiguration(plans, r.configuration, plansFile);
  const datasetJson = readTrainingDatasetJson(located.preprocessedBase, located.rawFolder);
  const labels = LabelManager.fromDatasetJson(datasetJson);
  const trainer = await resolveTrainer(r.trainer ?? 'nnUNetTrainer', { batchSize: configuration.batch_size, patchSize: configuration.patch_size }, r.overrides);
  const paths = foldPaths({ dataset: located.name, trainer: trainer.name, plans: plansName, configuration: r.configuration, fold: r.fold, env });

  const dataFolder = join(paths.preprocessedBase, configuration.data_identifier);
  const caseIds = preprocessedCaseIds(dataFolder);
  const splitMessages: string[] = [];
  let split: Split;
  if (r.fold === 'all') {
    split = splitForFold([], 'all', caseIds);
  } else {
    const existed = existsSync(paths.splitsFile);
    splitMessages.push(existed ? `Using splits from existing split file: ${paths.splitsFile}` : 'Creating new 5-fold cross-validation split...');
    const splits = await loadOrCreateSplits(paths.splitsFile, caseIds);
    if (existed) splitMessages.push(`The split file contains ${splits.length} splits.`);
    splitMessages.push(`Desired fold for training: ${r.fold}`);
    split = splitForFold(splits, r.fold, caseIds);
    splitMessages.push(
      r.fold < splits.length
        ? `This split has ${split.train.length} training and ${split.val.length} validation cases.`
        : `INFO: You requested fold ${r.fold} for training but splits contain only ${splits.length} folds. I am now creating a random (but seeded) 80:20 split! ` +
            `This random 80:20 split has ${split.train.length} training and ${split.val.length} validation cases.`,
    );
    if (split.train.some((k) => split.val.includes(k))) {
      splitMessages.push('WARNING: Some validation cases are also in the training set. Please check the splits.json or ignore if this is intentional.');
    }
  }
  if (split.train.length === 0 || split.val.length === 0) throw new DatasetError(`fold ${r.fold} has ${split.train.length} training and ${split.val.length} validation cases; both must be non-empty`, paths.splitsFile);

  const previousStage = configuration.previous_stage;
  const previousStageFolder = previousStage
    ? join(paths.modelFolder, '..', `${trainer.name}__${plansName}__${previousStage}`, 'predicted_next_stage', r.configuration)
    : null;
  if (previousStageFolder && !existsSync(previousStageFolder)) {
    throw new DatasetError(`configuration ${r.configuration} is a cascade stage: train all folds of ${previousStage} first (its predicted_next_stage/ is missing)`, previousStageFolder);
  }
  return {
    paths,
    plansName,
    plans,
    configurationName: r.configuration,
    configuration,
    datasetJson,
    labels,
    trainer,
    geometry: augmentationGeometry(configuration.patch_size, trainer.options.mirroring),
    dataFolder,
    caseIds,
    split,
    splitMessages,
    previousStageFolder,
  };
}

/** on_train_start's copies: what a model folder needs for inference without the preprocessed data. */
export async function writeModelFolderFiles(s: FoldSetup): Promise<void> {
  await savePlans(join(s.paths.modelFolder, 'plans.json'), s.plans);
  await writeFileAtomic(join(s.paths.modelFolder, 'dataset.json'), JSON.stringify(s.datasetJson, null, 4));
  if (existsSync(s.paths.fingerprintFile)) await copyFile(s.paths.fingerprintFile, join(s.paths.modelFolder, 'dataset_fingerprint.json'));
}
