// Models that ship inside the package (models/demo: a small Hippocampus model trained by this
// project's own pipeline) are copied into the model repository when the server starts, so a fresh
// install serves them with no download. The copy is what a user would get from installing the
// model's zip: a folder in nnU-Net's results layout, written under a temporary name and renamed.
//
// Rules, so that a bundled model never overwrites or shadows a user's own:
//  - a model folder that already exists in the repository is left alone (the user may have
//    retrained or replaced it);
//  - when the repository holds a different dataset with the same id (e.g. Dataset004_Liver), the
//    bundled Dataset004_Hippocampus is not installed, because `-d 4` would become ambiguous;
//  - `NNUNET_BUNDLED_MODELS=none` (or an empty value) turns the whole step off; any other value is
//    the folder to take bundled models from (default: the package's models/demo; server/config.ts).
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseDatasetFolderName } from '../dataset/paths.js';
import { temporarySibling } from '../io/atomic.js';
import { listModels, subfolders } from './repository.js';

export interface BundledInstallResult {
  /** "DatasetXXX_Name/Trainer__Plans__configuration" of each model copied now. */
  installed: string[];
  /** Models not copied, with the reason (already present, dataset id taken). */
  skipped: { model: string; reason: string }[];
}

/** Copies the bundled models missing from `resultsRoot` into it (see the module comment for the rules). */
export function installBundledModels(bundledRoot: string, resultsRoot: string): BundledInstallResult {
  const result: BundledInstallResult = { installed: [], skipped: [] };
  const present = subfolders(resultsRoot);
  for (const model of listModels(bundledRoot)) {
    const name = `${model.dataset}/${model.trainer}__${model.plans}__${model.configuration}`;
    const id = parseDatasetFolderName(model.dataset)?.id;
    const clash = present.find((d) => d !== model.dataset && parseDatasetFolderName(d)?.id === id);
    if (clash) {
      result.skipped.push({ model: name, reason: `the repository already has ${clash} with the same dataset id` });
      continue;
    }
    const target = join(resultsRoot, name);
    if (existsSync(target)) {
      result.skipped.push({ model: name, reason: 'already in the repository' });
      continue;
    }
    mkdirSync(join(resultsRoot, model.dataset), { recursive: true });
    const temp = temporarySibling(target);
    try {
      cpSync(model.folder, temp, { recursive: true });
      renameSync(temp, target);
    } catch (err) {
      rmSync(temp, { recursive: true, force: true });
      throw err;
    }
    result.installed.push(name);
  }
  return result;
}
