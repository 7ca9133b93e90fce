// Installs a model zip into the model repository (nnUNet_results): nnU-Net v2's export format
// (`DatasetXXX_Name/<Trainer>__<Plans>__<config>/...`, as nnUNetv2_export_model_to_zip writes it)
// and ours, which has the same member paths. Unlike nnU-Net's plain extractall we refuse unsafe
// entries, bound the unpacked size, convert every fold to ONNX before anything becomes visible,
// and move whole model folders into place with renames: a failed install leaves nothing behind.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { DatasetError } from '../dataset/errors.js';
import { parseDatasetFolderName } from '../dataset/paths.js';
import { loadModelFolder, releaseModel } from '../inference/model-folder.js';

export interface InstallOptions {
  /** Replace model folders that already exist (default: refuse). */
  overwrite?: boolean;
  /** Refuse archives that unpack to more than this many bytes (default 64 GiB). */
  maxUnpackedBytes?: number;
  maxEntries?: number;
  onProgress?: (message: string) => void;
}

export interface InstalledModel {
  dataset: string;
  model: string;
  folder: string;
  folds: string[];
}

export class ModelInstallError extends DatasetError {
  constructor(message: string, file?: string) {
    super(message, file);
    this.name = 'ModelInstallError';
  }
}

/** A safe relative member path: no absolute paths, drive letters, backslashes or `..`. */
export function checkMemberPath(name: string): string | undefined {
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  if (name.split('/').some((p) => p === '..')) return 'contains ".."';
  if (name.includes('\0')) return 'contains a NUL byte';
  const norm = normalize(name);
  if (norm.startsWith('..') || norm.startsWith(sep)) return 'escapes the target folder';
  return undefined;
}

const openZip = (file: string) =>
  new Promise<yauzl.ZipFile>((resolve, reject) => yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true }, (err, zip) => (err ? reject(err) : resolve(zip!))));

/** Lists and validates every entry before extracting anything. */
async function readEntries(zip: yauzl.ZipFile, file: string, o: InstallOptions): Promise<yauzl.Entry[]> {
  const entries: yauzl.Entry[] = [];
  let total = 0;
  const maxBytes = o.maxUnpackedBytes ?? 64 * 1024 ** 3;
  const maxEntries = o.maxEntries ?? 100_000;
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      const problem = checkMemberPath(entry.fileName);
      if (problem) return reject(new ModelInstallError(`refusing unsafe zip entry "${entry.fileName}": it ${problem}`, file));
      const mode = (entry.externalFileAttributes >>> 16) & 0o170000;
      if (mode === 0o120000) return reject(new ModelInstallError(`refusing symbolic link in zip: "${entry.fileName}"`, file));
      total += entry.uncompressedSize;
      if (total > maxBytes) return reject(new ModelInstallError(`archive unpacks to more than ${maxBytes} bytes; refusing`, file));
      if (entries.push(entry) > maxEntries) return reject(new ModelInstallError(`archive has more than ${maxEntries} entries; refusing`, file));
      zip.readEntry();
    });
    zip.on('end', resolve);
    // yauzl checks names itself ("invalid relative path", "absolute path"): report those as unsafe entries too
    zip.on('error', (err: Error) =>
      reject(new ModelInstallError(/path/.test(err.message) ? `refusing unsafe zip entry: ${err.message}` : `invalid zip archive: ${err.message}`, file)),
    );
    zip.readEntry();
  });
  return entries;
}

async function extract(zip: yauzl.ZipFile, entries: yauzl.Entry[], target: string): Promise<void> {
  for (const entry of entries) {
    const out = join(target, entry.fileName);
    if (entry.fileName.endsWith('/')) {
      mkdirSync(out, { recursive: true });
      continue;
    }
    mkdirSync(dirname(out), { recursive: true });
    const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s!))));
    await pipeline(stream, createWriteStream(out));
  }
}

/** Model folders (dataset/model) inside an extracted tree. */
function modelFolders(root: string, file: string): { dataset: string; model: string }[] {
  const found: { dataset: string; model: string }[] = [];
  for (const dataset of readdirSync(root)) {
    if (!statSync(join(root, dataset)).isDirectory()) continue;
    if (parseDatasetFolderName(dataset)?.format !== 'v2') throw new ModelInstallError(`top-level folder "${dataset}" is not a DatasetXXX_Name folder`, file);
    for (const model of readdirSync(join(root, dataset))) {
      const dir = join(root, dataset, model);
      if (!statSync(dir).isDirectory()) continue; // e.g. inference_information.json
      if (model.split('__').length === 3) found.push({ dataset, model });
    }
  }
  if (found.length === 0) throw new ModelInstallError('the zip holds no model folder (DatasetXXX_Name/<Trainer>__<Plans>__<configuration>/)', file);
  return found;
}

/**
 * A zip from our export carries fold_X/model.onnx with a sidecar naming the checkpoint it was
 * converted from (name, size, mtime). Extraction gives the checkpoint a new mtime, so the sidecar
 * is brought up to date when name and size still match: the model then loads from the shipped
 * ONNX instead of converting the checkpoint again. A model.onnx without a checkpoint is used as
 * it is, so this trusts the zip no more than the loader already does.
 */
function adoptShippedOnnx(modelFolder: string): void {
  for (const fold of readdirSync(modelFolder).filter((n) => /^fold_(\d+|all)$/.test(n))) {
    const sidecarFile = join(modelFolder, fold, 'model.onnx.json');
    if (!existsSync(sidecarFile) || !existsSync(join(modelFolder, fold, 'model.onnx'))) continue;
    let sidecar: { source?: unknown; sourceSize?: unknown; sourceMtimeMs?: unknown };
    try {
      sidecar = JSON.parse(readFileSync(sidecarFile, 'utf8')) as typeof sidecar;
    } catch {
      continue; // the loader reports it
    }
    if (typeof sidecar.source !== 'string' || checkMemberPath(sidecar.source) || sidecar.source.includes('/')) continue;
    const source = statSync(join(modelFolder, fold, sidecar.source), { throwIfNoEntry: false });
    if (source?.isFile() && source.size === sidecar.sourceSize) writeFileSync(sidecarFile, JSON.stringify({ ...sidecar, sourceMtimeMs: source.mtimeMs }, null, 2));
  }
}

/** Installs `zipFile` into `resultsRoot`. */
export async function installModelZip(zipFile: string, resultsRoot: string, o: InstallOptions = {}): Promise<InstalledModel[]> {
  if (!existsSync(zipFile)) throw new ModelInstallError('file does not exist', zipFile);
  mkdirSync(resultsRoot, { recursive: true });
  const staging = await mkdtemp(join(resultsRoot, '.install-'));
  let zip: yauzl.ZipFile | undefined;
  try {
    try {
      zip = await openZip(zipFile);
    } catch (err) {
      throw new ModelInstallError(`not a readable zip archive: ${(err as Error).message}`, zipFile);
    }
    const entries = await readEntries(zip, zipFile, o);
    o.onProgress?.(`extracting ${entries.length} entries`);
    await extract(zip, entries, staging).catch((err: Error) => {
      throw new ModelInstallError(`extraction failed: ${err.message}`, zipFile);
    });
    const models = modelFolders(staging, zipFile);
    // Load every model before installing any: this converts each fold's checkpoint to model.onnx
    // inside the staging folder and proves onnxruntime can run it.
    const installed: InstalledModel[] = [];
    for (const m of models) {
      const folder = join(staging, m.dataset, m.model);
      o.onProgress?.(`checking ${m.dataset}/${m.model}`);
      let loaded;
      try {
        const hasFolds = readdirSync(folder).some((n) => /^fold_(\d+|all)$/.test(n));
        if (!hasFolds) throw new Error('no fold_N folder');
        const folds = readdirSync(folder).filter((n) => /^fold_(\d+|all)$/.test(n)).map((n) => n.slice(5));
        adoptShippedOnnx(folder);
        loaded = await loadModelFolder(folder, { folds });
      } catch (err) {
        throw new ModelInstallError(`model ${m.dataset}/${m.model} cannot be loaded: ${(err as Error).message}`, zipFile);
      }
      installed.push({ dataset: m.dataset, model: m.model, folder: join(resultsRoot, m.dataset, m.model), folds: loaded.folds.map((f) => f.fold) });
      await releaseModel(loaded);
    }
    for (const m of installed) {
      if (existsSync(m.folder) && !o.overwrite) {
        throw new ModelInstallError(`model ${m.dataset}/${m.model} is already installed (pass overwrite to replace it)`, m.folder);
      }
    }
    for (const m of installed) {
      mkdirSync(join(resultsRoot, m.dataset), { recursive: true });
      const backup = `${m.folder}.replaced-${process.pid}`;
      const replacing = existsSync(m.folder);
      if (replacing) renameSync(m.folder, backup);
      renameSync(join(staging, m.dataset, m.model), m.folder);
      if (replacing) rmSync(backup, { recursive: true, force: true });
      o.onProgress?.(`installed ${m.dataset}/${m.model} (folds ${m.folds.join(', ')})`);
    }
    return installed;
  } finally {
    zip?.close();
    rmSync(staging, { recursive: true, force: true });
  }
}
