// The raw-dataset side of DatasetService, without gRPC: creating a dataset folder, describing
// one, where a case file goes, and keeping dataset.json's numTraining equal to the labelled cases
// (nnU-Net refuses a dataset where they differ). Writes go through temporary names and renames.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { caseIdsInFolder } from '../dataset/cases.js';
import { parseDatasetJson, readDatasetJsonFile, type DatasetJson, type LabelValue } from '../dataset/dataset-json.js';
import { listDatasets, type DatasetLocation } from '../dataset/paths.js';
import { writeFileAtomic } from '../io/atomic.js';

export type Split = 'CASE_SPLIT_TRAINING' | 'CASE_SPLIT_TEST';

export interface LabelDefinition {
  name: string;
  values: number[];
}

export interface DatasetCaseInfo {
  case_id: string;
  split: Split;
  channels: number[];
  has_label: boolean;
  size_bytes: number;
}

export interface DatasetInfo {
  id: number;
  name: string;
  channel_names: string[];
  labels: LabelDefinition[];
  file_ending: string;
  num_training: number;
  description: string;
  cases: DatasetCaseInfo[];
}

const locks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call for the same key (one dataset.json writer at a time). */
export function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.catch(() => {});
  locks.set(key, tail);
  void tail.then(() => locks.get(key) === tail && locks.delete(key));
  return run;
}

export const labelsToJson = (labels: LabelDefinition[]): Record<string, LabelValue> =>
  Object.fromEntries(labels.map((l) => [l.name, l.values.length === 1 ? l.values[0] : l.values]));

const labelsFromJson = (labels: Record<string, LabelValue>): LabelDefinition[] =>
  Object.entries(labels).map(([name, v]) => ({ name, values: Array.isArray(v) ? v : [v] }));

/** Validates a dataset.json built from a request; returns nnU-Net's complaints, empty when valid. */
export function datasetJsonProblems(json: DatasetJson): string[] {
  return parseDatasetJson(json).problems;
}

/** Creates `rawRoot/folderName` with dataset.json and empty case folders, all at once by a rename. */
export async function createDatasetFolder(rawRoot: string, folderName: string, json: DatasetJson): Promise<string> {
  await mkdir(rawRoot, { recursive: true });
  const staging = await mkdtemp(join(rawRoot, '.create-'));
  try {
    for (const sub of ['imagesTr', 'labelsTr', 'imagesTs']) await mkdir(join(staging, sub));
    await writeFile(join(staging, 'dataset.json'), JSON.stringify(json, null, 2) + '\n');
    const target = join(rawRoot, folderName);
    await rename(staging, target);
    return target;
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/** The folder holding a case's image (or label) file, and its file name. */
export function caseFile(datasetFolder: string, fileEnding: string, caseId: string, split: Split, target: { label: boolean; channel: number }): { folder: string; file: string; relative: string } {
  const sub = target.label ? 'labelsTr' : split === 'CASE_SPLIT_TEST' ? 'imagesTs' : 'imagesTr';
  const name = target.label ? `${caseId}${fileEnding}` : `${caseId}_${String(target.channel).padStart(4, '0')}${fileEnding}`;
  return { folder: join(datasetFolder, sub), file: join(datasetFolder, sub, name), relative: `${sub}/${name}` };
}

const filesIn = (folder: string): string[] => (existsSync(folder) ? readdirSync(folder).filter((f) => !f.startsWith('.')) : []);

function casesOf(datasetFolder: string, json: DatasetJson, split: Split, labelled: Set<string>): DatasetCaseInfo[] {
  const folder = join(datasetFolder, split === 'CASE_SPLIT_TEST' ? 'imagesTs' : 'imagesTr');
  if (!existsSync(folder)) return [];
  const files = filesIn(folder);
  const ending = json.file_ending;
  const size = (f: string) => statSync(f, { throwIfNoEntry: false })?.size ?? 0;
  return caseIdsInFolder(folder, ending).map((id) => {
    const channelFiles = files.filter((f) => f.startsWith(`${id}_`) && f.endsWith(ending) && /^\d{4}$/.test(f.slice(id.length + 1, f.length - ending.length)));
    const hasLabel = split === 'CASE_SPLIT_TRAINING' && labelled.has(id);
    const bytes = channelFiles.reduce((n, f) => n + size(join(folder, f)), 0) + (hasLabel ? size(join(datasetFolder, 'labelsTr', id + ending)) : 0);
    const channels = channelFiles.map((f) => Number(f.slice(id.length + 1, f.length - ending.length))).sort((a, b) => a - b);
    return { case_id: id, split, channels, has_label: hasLabel, size_bytes: bytes };
  });
}

/** Labels in labelsTr (case ids), for numTraining and has_label. */
function labelledCases(datasetFolder: string, ending: string): Set<string> {
  return new Set(filesIn(join(datasetFolder, 'labelsTr')).filter((f) => f.endsWith(ending)).map((f) => f.slice(0, -ending.length)));
}

export function describeDataset(loc: DatasetLocation, withCases: boolean): DatasetInfo {
  const { json, problems } = readDatasetJsonFile(join(loc.folder, 'dataset.json'));
  const valid = problems.length === 0;
  const channelNames = valid ? Object.entries(json.channel_names).sort(([a], [b]) => Number(a) - Number(b)).map(([, n]) => n) : [];
  const labelled = valid ? labelledCases(loc.folder, json.file_ending) : new Set<string>();
  const cases = valid && withCases ? [...casesOf(loc.folder, json, 'CASE_SPLIT_TRAINING', labelled), ...casesOf(loc.folder, json, 'CASE_SPLIT_TEST', labelled)] : [];
  return {
    id: loc.id,
    name: loc.name,
    channel_names: channelNames,
    labels: valid ? labelsFromJson(json.labels) : [],
    file_ending: valid ? json.file_ending : '',
    num_training: valid ? json.numTraining : 0,
    description: valid ? String(json.description ?? '') : `invalid dataset.json: ${problems.join('; ')}`,
    cases,
  };
}

export function listDatasetInfos(rawRoot: string): DatasetInfo[] {
  return listDatasets(rawRoot).map((loc) => describeDataset(loc, false));
}

/**
 * Sets numTraining to the number of training cases that have a label and at least one image,
 * which is what nnU-Net counts. Called under the dataset's lock after every change.
 */
export async function recountTraining(datasetFolder: string): Promise<number> {
  const file = join(datasetFolder, 'dataset.json');
  const json = JSON.parse(await readFile(file, 'utf8')) as DatasetJson;
  const ending = json.file_ending;
  const images = existsSync(join(datasetFolder, 'imagesTr')) ? new Set(caseIdsInFolder(join(datasetFolder, 'imagesTr'), ending)) : new Set<string>();
  const count = [...labelledCases(datasetFolder, ending)].filter((id) => images.has(id)).length;
  if (json.numTraining !== count) {
    json.numTraining = count;
    await writeFileAtomic(file, JSON.stringify(json, null, 2) + '\n');
  }
  return count;
}

/** Files of a case in one split (images and, for training, the label). */
export function caseFiles(datasetFolder: string, fileEnding: string, caseId: string, split: Split): string[] {
  const imagesSub = split === 'CASE_SPLIT_TEST' ? 'imagesTs' : 'imagesTr';
  const pattern = new RegExp(`^${caseId.replace(/[.]/g, '\\.')}_\\d{4}${fileEnding.replace(/[.]/g, '\\.')}$`);
  const found = filesIn(join(datasetFolder, imagesSub)).filter((f) => pattern.test(f)).map((f) => `${imagesSub}/${f}`);
  if (split === 'CASE_SPLIT_TRAINING' && existsSync(join(datasetFolder, 'labelsTr', caseId + fileEnding))) found.push(`labelsTr/${caseId}${fileEnding}`);
  return found;
}
