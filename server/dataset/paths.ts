// Data roots and dataset lookup, following nnU-Net v2's folder conventions (v2: nnunetv2/paths.py):
// `nnUNet_raw`, `nnUNet_preprocessed`, `nnUNet_results`, each falling back to a folder under one
// `NNUNET_HOME` (default ./nnunet_data) so that a new user needs to set nothing.
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetError } from './errors.js';

export interface DataRoots {
  raw: string;
  preprocessed: string;
  results: string;
}

/** Resolves the three data roots from the environment. */
export function dataRoots(env: NodeJS.ProcessEnv = process.env): DataRoots {
  const home = resolve(env.NNUNET_HOME ?? 'nnunet_data');
  return {
    raw: resolve(env.nnUNet_raw ?? join(home, 'nnUNet_raw')),
    preprocessed: resolve(env.nnUNet_preprocessed ?? join(home, 'nnUNet_preprocessed')),
    results: resolve(env.nnUNet_results ?? join(home, 'nnUNet_results')),
  };
}

/** A dataset folder found in the raw root: v2 `DatasetXXX_Name` or v1 `TaskXXX_Name`. */
export interface DatasetLocation {
  id: number;
  /** Folder name, e.g. `Dataset004_Hippocampus` (v1 folders keep their `Task004_...` name). */
  name: string;
  folder: string;
  format: 'v2' | 'v1';
}

const FOLDER_PATTERN = /^(Dataset|Task)(\d{3})_(.+)$/;

/** Parses a dataset folder name; undefined when the name does not follow the convention. */
export function parseDatasetFolderName(name: string): { id: number; format: 'v2' | 'v1' } | undefined {
  const m = FOLDER_PATTERN.exec(name);
  if (!m) return undefined;
  return { id: Number(m[2]), format: m[1] === 'Dataset' ? 'v2' : 'v1' };
}

/** The canonical v2 folder name for an id and a short name (`Dataset004_Hippocampus`). */
export function datasetFolderName(id: number, shortName: string): string {
  if (!Number.isInteger(id) || id < 0 || id > 999) throw new DatasetError(`dataset id must be an integer in 0..999, got ${id}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(shortName)) {
    throw new DatasetError(`dataset name "${shortName}" may only contain letters, digits, '_', '.', '-'`);
  }
  return `Dataset${String(id).padStart(3, '0')}_${shortName}`;
}

/** All dataset folders in a raw root, sorted by id then name. */
export function listDatasets(rawRoot: string): DatasetLocation[] {
  let entries: string[];
  try {
    entries = readdirSync(rawRoot);
  } catch {
    return [];
  }
  const found: DatasetLocation[] = [];
  for (const name of entries) {
    const parsed = parseDatasetFolderName(name);
    if (!parsed) continue;
    const folder = join(rawRoot, name);
    if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory()) continue;
    found.push({ ...parsed, name, folder });
  }
  return found.sort((a, b) => a.id - b.id || a.name.localeCompare(b.name));
}

/**
 * Finds a dataset by id (`4`, `004`) or full folder name (`Dataset004_Hippocampus`), as nnU-Net's
 * `-d` accepts. A v2 folder wins over a v1 `Task` folder with the same id; two v2 folders with one
 * id are an error (nnU-Net refuses that too).
 */
export function findDataset(idOrName: string, rawRoot: string): DatasetLocation {
  const all = listDatasets(rawRoot);
  const byName = all.find((d) => d.name === idOrName);
  if (byName) return byName;
  if (!/^\d+$/.test(idOrName)) {
    throw new DatasetError(`dataset "${idOrName}" not found in ${rawRoot}: give an id (e.g. 4) or a folder name (e.g. Dataset004_Name)`);
  }
  const id = Number(idOrName);
  const matches = all.filter((d) => d.id === id);
  const v2 = matches.filter((d) => d.format === 'v2');
  if (v2.length > 1) {
    throw new DatasetError(`dataset id ${id} is ambiguous in ${rawRoot}: ${v2.map((d) => d.name).join(', ')}`);
  }
  const hit = v2[0] ?? matches[0];
  if (!hit) {
    const known = all.map((d) => d.name).join(', ') || 'none';
    throw new DatasetError(`no dataset with id ${id} in ${rawRoot} (datasets there: ${known}); set nnUNet_raw or NNUNET_HOME to the right folder`);
  }
  return hit;
}
