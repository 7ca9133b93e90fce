// Case discovery in a raw dataset, exactly as nnU-Net v2 does it (REFERENCE §1.1,
// v2: nnunetv2/utilities/utils.py): ids from `imagesTr` file names, channels by the 4-digit
// suffix, labels in `labelsTr`; or an explicit `dataset` mapping in dataset.json.
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { DatasetJson } from './dataset-json.js';
import { DatasetError } from './errors.js';

export interface RawCase {
  id: string;
  /** One file per channel, in channel order. */
  images: string[];
  /** Where the label file is (or would be); it may be missing — integrity verification reports that. */
  label: string;
}

/** Python's sorted() on strings compares code points, not locale order. */
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Expands `$VAR` / `${VAR}` like Python's os.path.expandvars (unknown variables stay as written). */
function expandVars(path: string, env: NodeJS.ProcessEnv): string {
  return path.replace(/\$(\w+|\{\w+\})/g, (whole, name: string) => env[name.replace(/[{}]/g, '')] ?? whole);
}

/** Ids of the image files in `folder` ending with `fileEnding` (unique, sorted). */
export function caseIdsInFolder(folder: string, fileEnding: string): string[] {
  const files = readdirSync(folder).filter((f) => f.endsWith(fileEnding) && f.length > fileEnding.length + 5);
  const ids = files.map((f) => f.slice(0, f.length - fileEnding.length - 5));
  return [...new Set(ids)].sort(byCodePoint);
}

/** The channel files of case `id` in `folder`: `{id}_NNNN{ending}`, sorted by file name. */
export function channelFiles(folder: string, id: string, fileEnding: string, files?: string[]): string[] {
  const pattern = new RegExp(`^${escapeRegExp(id)}_\\d\\d\\d\\d${escapeRegExp(fileEnding)}$`);
  return (files ?? readdirSync(folder))
    .filter((f) => pattern.test(f))
    .sort(byCodePoint)
    .map((f) => join(folder, f));
}

/** Images-only cases of a folder (e.g. `imagesTs` or a prediction input folder). */
export function discoverImageCases(folder: string, fileEnding: string): Omit<RawCase, 'label'>[] {
  if (!existsSync(folder)) throw new DatasetError(`folder does not exist`, folder);
  const files = readdirSync(folder);
  return caseIdsInFolder(folder, fileEnding).map((id) => ({ id, images: channelFiles(folder, id, fileEnding, files) }));
}

/** The training cases of a raw dataset. */
export function discoverTrainingCases(datasetFolder: string, json: DatasetJson, env: NodeJS.ProcessEnv = process.env): RawCase[] {
  if (json.dataset) {
    const abs = (p: string) => {
      const expanded = expandVars(p, env);
      return isAbsolute(expanded) ? expanded : resolve(datasetFolder, expanded);
    };
    return Object.keys(json.dataset)
      .sort(byCodePoint)
      .map((id) => {
        const entry = (json.dataset as NonNullable<DatasetJson['dataset']>)[id];
        return { id, images: entry.images.map(abs), label: abs(entry.label) };
      });
  }
  const imagesTr = join(datasetFolder, 'imagesTr');
  const labelsTr = join(datasetFolder, 'labelsTr');
  if (!existsSync(imagesTr)) throw new DatasetError('imagesTr folder is missing', imagesTr);
  return discoverImageCases(imagesTr, json.file_ending).map((c) => ({ ...c, label: join(labelsTr, c.id + json.file_ending) }));
}
