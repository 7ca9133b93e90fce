// The model repository: trained model folders under nnUNet_results, in nnU-Net v2's layout
// (`DatasetXXX_Name/<Trainer>__<Plans>__<configuration>/fold_X`), so models trained by nnU-Net
// itself and copied there are found as they are. inspectModel reports whether a model can serve
// (Triton's READY / LOADING / FAILED with a reason) from its files alone: nothing is loaded here,
// onnxruntime sessions are created lazily by the model cache on first Predict.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDatasetJson } from '../dataset/dataset-json.js';
import { parseDatasetFolderName } from '../dataset/paths.js';
import { getConfiguration, parsePlans } from '../planning/plans.js';

export interface ModelFolder {
  dataset: string;
  trainer: string;
  plans: string;
  configuration: string;
  folds: string[];
  folder: string;
}

/** The folders in `dir` (none when it does not exist), without dot-names. */
export const subfolders = (dir: string): string[] => {
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

export type ModelState = 'READY' | 'LOADING' | 'FAILED';

export interface FoldCheck {
  fold: string;
  /** The file Predict would load ("model.onnx", "checkpoint_final.pth", ...); '' when none. */
  network: string;
  /** '' when the fold is usable. */
  problem: string;
}

export interface ModelInspection {
  state: ModelState;
  reason: string;
  folds: FoldCheck[];
  channelNames: string[];
  labels: { name: string; values: number[] }[];
}

/**
 * What a fold would serve, by the loader's rules (server/inference/model-folder.ts): a model.onnx
 * whose sidecar matches the checkpoint beside it (or with no checkpoint), else the checkpoint,
 * converted on first load.
 */
export function checkFold(folder: string, fold: string, checkpoint = 'checkpoint_final'): FoldCheck {
  const dir = join(folder, `fold_${fold}`);
  const stat = (name: string) => statSync(join(dir, name), { throwIfNoEntry: false });
  const source = [`${checkpoint}.safetensors`, `${checkpoint}.pth`].find((n) => stat(n)?.isFile());
  const onnx = stat('model.onnx')?.isFile() ?? false;
  let sidecar: { source?: string; sourceSize?: number; sourceMtimeMs?: number } | undefined;
  if (onnx && stat('model.onnx.json')?.isFile()) {
    try {
      sidecar = JSON.parse(readFileSync(join(dir, 'model.onnx.json'), 'utf8')) as typeof sidecar;
    } catch {
      return { fold, network: '', problem: 'model.onnx.json is not valid JSON' };
    }
  }
  if (source) {
    const s = stat(source)!;
    const fresh = sidecar && sidecar.source === source && sidecar.sourceSize === s.size && sidecar.sourceMtimeMs === s.mtimeMs;
    return { fold, network: fresh ? 'model.onnx' : source, problem: '' };
  }
  if (sidecar) return { fold, network: 'model.onnx', problem: '' };
  if (onnx) return { fold, network: '', problem: 'model.onnx has no model.onnx.json beside it (mirroring axes unknown) and there is no checkpoint to convert' };
  const latest = ['checkpoint_latest.safetensors', 'checkpoint_latest.pth'].find((n) => stat(n)?.isFile());
  return {
    fold,
    network: '',
    problem: `no ${checkpoint}.pth, ${checkpoint}.safetensors or model.onnx${latest ? ` (only ${latest}: training has not finished)` : ''}`,
  };
}

/**
 * Checks a model folder without loading any network: plans.json names the configuration,
 * dataset.json is valid, and every fold folder has a network Predict can load. `loading` marks a
 * model whose sessions are being created now (the model cache knows).
 */
export function inspectModel(m: ModelFolder, o: { loading?: boolean } = {}): ModelInspection {
  const result: ModelInspection = { state: 'READY', reason: '', folds: [], channelNames: [], labels: [] };
  const problems: string[] = [];
  try {
    const { json, problems: invalid } = parseDatasetJson(JSON.parse(readFileSync(join(m.folder, 'dataset.json'), 'utf8')));
    if (invalid.length > 0) problems.push(`dataset.json is invalid: ${invalid.join('; ')}`);
    result.channelNames = Object.entries(json.channel_names ?? {})
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([, n]) => n);
    result.labels = Object.entries(json.labels ?? {}).map(([name, v]) => ({ name, values: Array.isArray(v) ? v : [v] }));
  } catch (err) {
    problems.push(`dataset.json cannot be read: ${(err as Error).message}`);
  }
  try {
    getConfiguration(parsePlans(JSON.parse(readFileSync(join(m.folder, 'plans.json'), 'utf8')), join(m.folder, 'plans.json')), m.configuration);
  } catch (err) {
    problems.push(`plans.json: ${(err as Error).message}`);
  }
  result.folds = m.folds.map((f) => checkFold(m.folder, f));
  if (m.folds.length === 0) problems.push('no fold_N folder');
  for (const f of result.folds) if (f.problem) problems.push(`fold_${f.fold}: ${f.problem}`);
  if (problems.length > 0) {
    result.state = 'FAILED';
    result.reason = problems.join('; ');
  } else if (o.loading) {
    result.state = 'LOADING';
    result.reason = 'onnxruntime sessions are being loaded';
  }
  return result;
}
