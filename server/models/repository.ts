// The model repository: trained model folders under nnUNet_results, in nnU-Net v2's layout
// (`DatasetXXX_Name/<Trainer>__<Plans>__<configuration>/fold_X`), so models trained by nnU-Net
// itself and copied there are found as they are.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDatasetFolderName } from '../dataset/paths.js';

export interface ModelFolder {
  dataset: string;
  trainer: string;
  plans: string;
  configuration: string;
  folds: string[];
  folder: string;
}

const subfolders = (dir: string): string[] => {
  try {
    // Dot-names are installs in progress (temporary folders renamed into place when complete).
    return readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n), { throwIfNoEntry: false })?.isDirectory());
  } catch {
    return [];
  }
};

const foldOrder = (a: string, b: string) => (a === 'all' ? 1 : b === 'all' ? -1 : Number(a) - Number(b));

/** Lists model folders; `dataset` filters by id ("4") or folder name. */
export function listModels(resultsRoot: string, dataset?: string): ModelFolder[] {
  const models: ModelFolder[] = [];
  for (const datasetName of subfolders(resultsRoot).sort()) {
    const parsed = parseDatasetFolderName(datasetName);
    if (!parsed || parsed.format !== 'v2') continue;
    if (dataset && dataset !== datasetName && !(/^\d+$/.test(dataset) && Number(dataset) === parsed.id)) continue;
    for (const modelName of subfolders(join(resultsRoot, datasetName)).sort()) {
      const parts = modelName.split('__');
      if (parts.length !== 3 || parts.some((p) => p.length === 0)) continue;
      const folder = join(resultsRoot, datasetName, modelName);
      const folds = subfolders(folder)
        .map((n) => /^fold_(\d+|all)$/.exec(n)?.[1])
        .filter((f): f is string => f !== undefined)
        .sort(foldOrder);
      models.push({ dataset: datasetName, trainer: parts[0], plans: parts[1], configuration: parts[2], folds, folder });
    }
  }
  return models;
}
