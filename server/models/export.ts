// Exports installed models as a zip with nnU-Net v2's member paths (nnUNetv2_export_model_to_zip,
// REFERENCE §9.1): relative to nnUNet_results, per configuration DatasetXXX_Name/<Tr>__<Pl>__<C>/
// {plans.json, dataset.json, dataset_fingerprint.json}, per fold fold_X/{checkpoints, progress.png,
// debug.json, network_architecture.pdf, validation/summary.json}, crossval_results_folds_*/ and
// matching ensembles/* summaries, and DatasetXXX_Name/inference_information.{json,txt}. So
// nnUNetv2_install_pretrained_model_from_zip (a plain extractall) accepts it. We add each fold's
// model.onnx + model.onnx.json, so our installer runs the model without converting the checkpoint.
// Departures: files nnU-Net requires but we may lack (progress.png, summary.json, the fingerprint)
// are skipped when absent instead of failing, and a checkpoint named .pth falls back to our
// .safetensors of the same name.
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { join, relative, sep } from 'node:path';
import yazl from 'yazl';
import { temporarySibling } from '../io/atomic.js';
import { DatasetError } from '../dataset/errors.js';
import { checkFold, listModels, type ModelFolder } from './repository.js';

export interface ExportOptions {
  /** Dataset id ("104") or folder name. */
  dataset: string;
  /** Configurations; default every configuration installed for the trainer and plans. */
  configurations?: string[];
  trainer?: string;
  plans?: string;
  /** Folds; default every fold folder of each model. */
  folds?: string[];
  /** Checkpoint files per fold (nnU-Net's -chk); default checkpoint_final (.pth or .safetensors). */
  checkpoints?: string[];
  /** Every model of the dataset, whatever its trainer and plans (bundled models); trainer and plans are then ignored. */
  allModels?: boolean;
}

export interface ExportPlan {
  models: ModelFolder[];
  /** Absolute source file → member path, in zip order. */
  files: { source: string; member: string }[];
}

export class ModelExportError extends DatasetError {
  constructor(message: string, file?: string) {
    super(message, file);
    this.name = 'ModelExportError';
  }
}

const isFile = (p: string) => statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
const isDir = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** Decides what goes in the zip, checking that every requested model and fold exists. */
export function planExport(resultsRoot: string, o: ExportOptions): ExportPlan {
  const trainer = o.trainer || 'nnUNetTrainer';
  const plans = o.plans || 'nnUNetPlans';
  const candidates = listModels(resultsRoot, o.dataset).filter((m) => o.allModels || (m.trainer === trainer && m.plans === plans));
  const installed = `installed: ${listModels(resultsRoot, o.dataset).map((m) => `${m.dataset}/${m.trainer}__${m.plans}__${m.configuration}`).join(', ') || 'none'}`;
  if (candidates.length === 0) throw new ModelExportError(`no model of dataset ${o.dataset} with trainer ${trainer} and plans ${plans} (${installed})`, resultsRoot);
  let models = candidates;
  if (o.configurations && o.configurations.length > 0) {
    const missing = o.configurations.filter((c) => !candidates.some((m) => m.configuration === c));
    if (missing.length > 0) throw new ModelExportError(`configuration(s) ${missing.join(', ')} of dataset ${o.dataset} (${trainer}__${plans}) are not installed (${installed})`, resultsRoot);
    models = candidates.filter((m) => o.configurations!.includes(m.configuration));
  }
  const files: ExportPlan['files'] = [];
  const add = (source: string) => {
    if (!isFile(source)) return false;
    files.push({ source, member: relative(resultsRoot, source).split(sep).join('/') });
    return true;
  };
  const checkpoints = o.checkpoints && o.checkpoints.length > 0 ? o.checkpoints : ['checkpoint_final.pth'];
  const exportedIds = new Set(models.map((m) => `${m.trainer}__${m.plans}__${m.configuration}`));
  for (const m of models) {
    const folds = o.folds && o.folds.length > 0 ? o.folds : m.folds;
    const absent = folds.filter((f) => !m.folds.includes(f));
    if (absent.length > 0) throw new ModelExportError(`fold(s) ${absent.join(', ')} of ${m.dataset}/${m.trainer}__${m.plans}__${m.configuration} do not exist (available: ${m.folds.join(', ') || 'none'})`, m.folder);
    if (!isFile(join(m.folder, 'plans.json'))) throw new ModelExportError('plans.json is missing', m.folder);
    for (const fold of folds) {
      const dir = join(m.folder, `fold_${fold}`);
      add(join(dir, 'debug.json'));
      for (const chk of checkpoints) {
        const base = chk.replace(/\.(pth|safetensors)$/, '');
        if (!add(join(dir, chk)) && !add(join(dir, `${base}.safetensors`)) && !add(join(dir, `${base}.pth`))) {
          throw new ModelExportError(`fold_${fold} has no ${chk} (nor ${base}.safetensors)`, dir);
        }
      }
      add(join(dir, 'progress.png'));
      add(join(dir, 'network_architecture.pdf'));
      add(join(dir, 'validation', 'summary.json'));
      // our addition: the ONNX network, when it is current for the checkpoint beside it
      if (checkFold(m.folder, fold).network === 'model.onnx') {
        add(join(dir, 'model.onnx'));
        add(join(dir, 'model.onnx.json'));
      }
    }
    const crossval = join(m.folder, `crossval_results_folds_${folds.join('_')}`);
    for (const f of ['summary.json', 'postprocessing.pkl', 'postprocessing.json']) add(join(crossval, f));
    for (const f of ['plans.json', 'dataset_fingerprint.json', 'dataset.json']) add(join(m.folder, f));
  }
  const datasetDir = join(resultsRoot, models[0].dataset);
  const ensembles = join(datasetDir, 'ensembles');
  if (isDir(ensembles)) {
    for (const ens of readdirSync(ensembles).sort()) {
      // ensemble___<id1>___<id2>___<folds>: exported only when all its models are
      const ids = ens.split('___').slice(1, -1);
      if (ids.length === 0 || !ids.every((id) => exportedIds.has(id))) continue;
      for (const f of ['summary.json', 'postprocessing.pkl', 'postprocessing.json']) add(join(ensembles, ens, f));
    }
  }
  add(join(datasetDir, 'inference_information.json'));
  add(join(datasetDir, 'inference_information.txt'));
  return { models, files };
}

/** Writes the zip to `outFile` (through a temporary name and a rename); returns what it holds. */
export async function exportModelZip(resultsRoot: string, outFile: string, o: ExportOptions): Promise<ExportPlan> {
  const plan = planExport(resultsRoot, o);
  const tmp = temporarySibling(outFile);
  try {
    const zip = new yazl.ZipFile();
    for (const f of plan.files) {
      // checkpoints and ONNX barely compress; storing them saves the time
      const compress = !/\.(pth|safetensors|onnx|png|pdf)$/.test(f.member);
      zip.addFile(f.source, f.member, { compress });
    }
    zip.end();
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(tmp);
      out.on('close', resolve);
      out.on('error', reject);
      zip.outputStream.on('error', reject);
      zip.outputStream.pipe(out);
    });
    renameSync(tmp, outFile);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  if (!existsSync(outFile)) throw new ModelExportError('the zip was not written', outFile);
  return plan;
}
