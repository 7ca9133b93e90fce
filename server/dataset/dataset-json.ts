// `dataset.json` of a raw dataset: nnU-Net v2's keys (REFERENCE §1.2), validated when read, with
// v1/MSD-style files (`modality`, int→name `labels`) converted on the fly as
// nnUNetv2_convert_old_nnUNet_dataset would, so old Task folders work without a copy step.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from './errors.js';

/** An integer label, or a region: the list of labels it unites. */
export type LabelValue = number | number[];

export interface CaseFiles {
  images: string[];
  label: string;
}

export interface DatasetJson {
  channel_names: Record<string, string>;
  /** name → label or region, in the file's order (order matters for regions). */
  labels: Record<string, LabelValue>;
  numTraining: number;
  file_ending: string;
  regions_class_order?: number[];
  /** Explicit case → files mapping (REFERENCE §1.1 step 4); paths as written in the file. */
  dataset?: Record<string, CaseFiles>;
  overwrite_image_reader_writer?: string;
  name?: string;
  description?: string;
  /** Other keys of the file, kept so a rewritten dataset.json loses nothing. */
  [extra: string]: unknown;
}

export interface ParsedDatasetJson {
  json: DatasetJson;
  /** 'v1' when the file was MSD/v1-style and has been converted. */
  sourceFormat: 'v2' | 'v1';
  /** Every problem found; empty when the file is valid. */
  problems: string[];
}

const REQUIRED_KEYS = ['labels', 'channel_names', 'numTraining', 'file_ending'] as const;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isLabelInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** A v1 file names channels under `modality` and maps label ids to names. */
function looksLikeV1(raw: Record<string, unknown>): boolean {
  if ('channel_names' in raw) return false;
  if ('modality' in raw) return true;
  return isRecord(raw.labels) && Object.entries(raw.labels).every(([k, v]) => /^\d+$/.test(k) && typeof v === 'string');
}

function convertV1(raw: Record<string, unknown>, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  delete out.modality;
  delete out.training;
  delete out.test;
  delete out.numTest;
  if (isRecord(raw.modality)) out.channel_names = raw.modality;
  if (isRecord(raw.labels)) {
    const labels: Record<string, number> = {};
    for (const [id, name] of Object.entries(raw.labels)) {
      if (typeof name !== 'string' || !/^\d+$/.test(id)) {
        problems.push(`labels: v1 labels map label ids to names, got "${id}": ${JSON.stringify(name)}`);
        continue;
      }
      labels[name] = Number(id);
    }
    out.labels = labels;
  }
  // v1 only knew NIfTI; its datasets have no file_ending key.
  if (out.file_ending === undefined) out.file_ending = '.nii.gz';
  return out;
}

function checkLabels(json: Record<string, unknown>, problems: string[]): void {
  const labels = json.labels;
  if (!isRecord(labels)) {
    problems.push('labels: must be an object mapping label names to integers or lists of integers');
    return;
  }
  for (const [name, value] of Object.entries(labels)) {
    const ok = isLabelInt(value) || (Array.isArray(value) && value.length > 0 && value.every(isLabelInt));
    if (!ok) problems.push(`labels.${name}: must be a non-negative integer or a non-empty list of them, got ${JSON.stringify(value)}`);
  }
  if (!('background' in labels)) problems.push('labels: "background" must exist and be 0');
  else if (labels.background !== 0) problems.push(`labels.background: must be 0, got ${JSON.stringify(labels.background)}`);
  if ('ignore' in labels && !isLabelInt(labels.ignore)) problems.push('labels.ignore: must be a single integer');
}

function checkBasics(json: Record<string, unknown>, problems: string[]): void {
  const missing = REQUIRED_KEYS.filter((k) => !(k in json));
  for (const key of missing) problems.push(`${key}: required key is missing`);
  if ('channel_names' in json) {
    const ch = json.channel_names;
    if (!isRecord(ch) || Object.keys(ch).length === 0) {
      problems.push('channel_names: must be a non-empty object like {"0": "CT"}');
    } else {
      const keys = Object.keys(ch).sort((a, b) => Number(a) - Number(b));
      keys.forEach((k, i) => {
        if (k !== String(i)) problems.push(`channel_names: keys must be "0", "1", ... in sequence, got "${k}"`);
        if (typeof ch[k] !== 'string') problems.push(`channel_names.${k}: must be a string`);
      });
    }
  }
  if ('numTraining' in json && !(Number.isInteger(json.numTraining) && (json.numTraining as number) >= 0)) {
    problems.push(`numTraining: must be a non-negative integer, got ${JSON.stringify(json.numTraining)}`);
  }
  if ('file_ending' in json && !(typeof json.file_ending === 'string' && /^\.[A-Za-z0-9.]+$/.test(json.file_ending))) {
    problems.push(`file_ending: must look like ".nii.gz", got ${JSON.stringify(json.file_ending)}`);
  }
  if ('dataset' in json) {
    if (!isRecord(json.dataset)) problems.push('dataset: must map case ids to {"images": [...], "label": "..."}');
    else {
      for (const [id, entry] of Object.entries(json.dataset)) {
        const ok = isRecord(entry) && Array.isArray(entry.images) && entry.images.every((p) => typeof p === 'string') && typeof entry.label === 'string';
        if (!ok) problems.push(`dataset.${id}: must be {"images": [paths], "label": path}`);
      }
    }
  }
  if ('regions_class_order' in json) {
    const rco = json.regions_class_order;
    if (!(Array.isArray(rco) && rco.every(isLabelInt))) problems.push('regions_class_order: must be a list of integers');
  }
}

/** Validates a parsed dataset.json object; converts v1 content. Never throws. */
export function parseDatasetJson(raw: unknown): ParsedDatasetJson {
  const problems: string[] = [];
  if (!isRecord(raw)) return { json: raw as DatasetJson, sourceFormat: 'v2', problems: ['must be a JSON object'] };
  const sourceFormat = looksLikeV1(raw) ? 'v1' : 'v2';
  const obj = sourceFormat === 'v1' ? convertV1(raw, problems) : raw;
  checkBasics(obj, problems);
  if ('labels' in obj) checkLabels(obj, problems);
  return { json: obj as DatasetJson, sourceFormat, problems };
}

/** Reads and validates `dataset.json` of a dataset folder; throws a DatasetError listing every problem. */
export function loadDatasetJson(datasetFolder: string): ParsedDatasetJson {
  const file = join(datasetFolder, 'dataset.json');
  const parsed = readDatasetJsonFile(file);
  if (parsed.problems.length > 0) throw new DatasetError(`invalid dataset.json:\n  - ${parsed.problems.join('\n  - ')}`, file);
  return parsed;
}

/** Reads dataset.json; a missing or unparsable file is reported as a problem, not thrown. */
export function readDatasetJsonFile(file: string): ParsedDatasetJson {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { json: {} as DatasetJson, sourceFormat: 'v2', problems: ['dataset.json is missing'] };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { json: {} as DatasetJson, sourceFormat: 'v2', problems: [`not valid JSON: ${(err as Error).message}`] };
  }
  return parseDatasetJson(raw);
}
