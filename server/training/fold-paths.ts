// Where a fold reads and writes (DESIGN.md, REFERENCE §4.5 and §6.5): the preprocessed dataset
// (`<data_identifier>/CASE.npy`, splits_final.json, gt_segmentations/) and the model folder
// `nnUNet_results/DatasetXXX_Name/<Trainer>__<Plans>__<configuration>/fold_N`.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataRoots, findDataset } from '../dataset/paths.js';
import { DatasetError } from '../dataset/errors.js';
import { parseDatasetJson, type DatasetJson } from '../dataset/dataset-json.js';

export interface FoldPaths {
  datasetName: string;
  /** nnUNet_preprocessed/DatasetXXX_Name */
  preprocessedBase: string;
  plansFile: string;
  /** nnUNet_results/DatasetXXX_Name/<Trainer>__<Plans>__<configuration> */
  modelFolder: string;
  /** modelFolder/fold_N */
  foldFolder: string;
  splitsFile: string;
  gtFolder: string;
  fingerprintFile: string;
}

/** Finds the dataset (by id or name) in nnUNet_preprocessed, falling back to nnUNet_raw for the name. */
export function locateDataset(dataset: string, env: NodeJS.ProcessEnv): { name: string; preprocessedBase: string; rawFolder: string | null } {
  const roots = dataRoots(env);
  let name: string;
  try {
    name = findDataset(dataset, roots.preprocessed).name;
  } catch (err) {
    try {
      name = findDataset(dataset, roots.raw).name;
    } catch {
      throw err;
    }
  }
  const preprocessedBase = join(roots.preprocessed, name);
  if (!existsSync(preprocessedBase)) throw new DatasetError(`dataset ${name} is not preprocessed: run plan_and_preprocess first`, preprocessedBase);
  const rawFolder = join(roots.raw, name);
  return { name, preprocessedBase, rawFolder: existsSync(rawFolder) ? rawFolder : null };
}

export function modelFolderName(trainer: string, plans: string, configuration: string): string {
  return `${trainer}__${plans}__${configuration}`;
}

export function foldPaths(o: { dataset: string; trainer: string; plans: string; configuration: string; fold: number | 'all'; env: NodeJS.ProcessEnv }): FoldPaths {
  const { name, preprocessedBase } = locateDataset(o.dataset, o.env);
  const modelFolder = join(dataRoots(o.env).results, name, modelFolderName(o.trainer, o.plans, o.configuration));
  return {
    datasetName: name,
    preprocessedBase,
    plansFile: join(preprocessedBase, `${o.plans}.json`),
    modelFolder,
    foldFolder: join(modelFolder, `fold_${o.fold}`),
    splitsFile: join(preprocessedBase, 'splits_final.json'),
    gtFolder: join(preprocessedBase, 'gt_segmentations'),
    fingerprintFile: join(preprocessedBase, 'dataset_fingerprint.json'),
  };
}

/** The dataset.json preprocessing copied beside the plans (else the raw one). */
export function readTrainingDatasetJson(preprocessedBase: string, rawFolder: string | null): DatasetJson {
  const candidates = [join(preprocessedBase, 'dataset.json'), ...(rawFolder ? [join(rawFolder, 'dataset.json')] : [])];
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new DatasetError('no dataset.json beside the preprocessed data (nor in nnUNet_raw)', preprocessedBase);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DatasetError(`not valid JSON: ${(err as Error).message}`, file);
  }
  const { json, problems } = parseDatasetJson(raw);
  if (problems.length > 0) throw new DatasetError(`invalid dataset.json: ${problems.join('; ')}`, file);
  return json;
}

/** Case ids of a preprocessed folder: a case counts once its properties `<id>.json` exists. */
export function preprocessedCaseIds(dataFolder: string): string[] {
  if (!existsSync(dataFolder)) throw new DatasetError('the configuration is not preprocessed (folder missing): run preprocess for it', dataFolder);
  const ids = readdirSync(dataFolder)
    .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
    .map((f) => f.slice(0, -'.json'.length))
    .filter((id) => existsSync(join(dataFolder, `${id}.npy`)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (ids.length === 0) throw new DatasetError('no preprocessed cases (CASE.npy + CASE.json)', dataFolder);
  return ids;
}
