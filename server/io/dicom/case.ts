// DICOM in and out of one prediction: a zip of Part 10 files (how Predict receives a series) is
// read as a series and written as the NIfTI file the predictor reads, and the predicted label map
// is written as a DICOM SEG referencing that series.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { unzipSync } from 'fflate';
import { ImageFormatError, VolumeTooLargeError } from '../errors.js';
import { DicomError } from './errors.js';
import { checkSegReferences, writeSegmentation, type WrittenSeg } from './seg.js';
import type { DicomFile, DicomSeriesVolume, ReadSeriesOptions } from './series.js';
import type { SeriesWorkerError, SeriesWorkerTask } from './series-worker.js';

export interface DicomZipLimits {
  /** Most bytes all entries may inflate to. */
  maxBytes: number;
  /** Most entries. */
  maxFiles?: number;
}

/** The Part 10 files in a zip (folders, DICOMDIR and macOS resource forks skipped), checked against the limits before inflating. */
export function unzipDicomFiles(name: string, zip: Uint8Array, limits: DicomZipLimits): DicomFile[] {
  const maxFiles = limits.maxFiles ?? 10_000;
  let total = 0;
  let count = 0;
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(zip, {
      filter: (entry) => {
        if (entry.name.endsWith('/') || entry.name.startsWith('__MACOSX/') || /(^|\/)DICOMDIR$/i.test(entry.name)) return false;
        total += entry.originalSize;
        count++;
        if (count > maxFiles) throw new DicomError(name, `holds more than ${maxFiles} files`);
        if (total > limits.maxBytes) throw new DicomError(name, `inflates to more than ${limits.maxBytes} bytes (NNUNET_MAX_UPLOAD_BYTES)`);
        return true;
      },
    });
  } catch (err) {
    if (err instanceof DicomError) throw err;
    throw new DicomError(name, `not a readable zip of DICOM files (${err instanceof Error ? err.message : String(err)})`);
  }
  const files = Object.entries(entries).map(([entry, bytes]) => ({ name: entry, bytes }));
  if (files.length === 0) throw new DicomError(name, 'the zip holds no files');
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Reads the series in `files` and writes it as `dir`/dicom_0000.nii.gz for the predictor, in a
 * worker thread (see series-worker.ts). `forSeg`: the result will become a SEG, so the series must
 * have the UIDs a SEG references.
 */
export async function seriesToNifti(files: DicomFile[], dir: string, options: ReadSeriesOptions & { forSeg?: boolean } = {}): Promise<{ niftiFile: string; series: DicomSeriesVolume }> {
  const { forSeg, ...read } = options;
  const niftiFile = join(dir, 'dicom_0000.nii.gz');
  const task: SeriesWorkerTask = { files, options: read, niftiFile };
  const series = await new Promise<DicomSeriesVolume>((resolve, reject) => {
    const worker = new Worker(new URL(WORKER_FILE, import.meta.url), { workerData: task });
    worker.once('message', (m: { ok: true; series: DicomSeriesVolume } | { ok: false; error: SeriesWorkerError }) => (m.ok ? resolve(m.series) : reject(reviveError(m.error))));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the DICOM reading thread exited (code ${code}) without an answer`)));
  });
  if (forSeg) checkSegReferences(series.references);
  return { niftiFile, series };
}

/** The worker module: series-worker.js in dist/; under tsx a .mjs entry that loads the .ts through tsx. */
const WORKER_FILE = import.meta.url.endsWith('.ts') ? './series-worker.dev.mjs' : './series-worker.js';

/** An error from the worker with its class, so the RPC layer maps it as if thrown here. */
function reviveError(e: SeriesWorkerError): Error {
  const proto = e.name === 'VolumeTooLargeError' ? VolumeTooLargeError.prototype : e.name === 'DicomError' ? DicomError.prototype : e.name === 'ImageFormatError' ? ImageFormatError.prototype : Error.prototype;
  return Object.assign(Object.create(proto) as Error, e);
}

/** Reads a zip file of a series (see unzipDicomFiles) and writes it as NIfTI (see seriesToNifti). */
export async function dicomZipToNifti(zipFile: string, dir: string, limits: DicomZipLimits, options: ReadSeriesOptions & { forSeg?: boolean } = {}): Promise<{ niftiFile: string; series: DicomSeriesVolume }> {
  const files = unzipDicomFiles('DICOM zip', new Uint8Array(await readFile(zipFile)), limits);
  return seriesToNifti(files, dir, options);
}

/**
 * The label names of dataset.json's `labels` as SEG segments (background left out). Region-based
 * labels (lists of values) have no single value in a label map and are refused.
 */
export function segLabels(labels: Record<string, number | number[]>): { value: number; name: string }[] {
  const out: { value: number; name: string }[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (Array.isArray(value)) throw new DicomError('dataset.json', `label "${name}" is a region (${JSON.stringify(value)}); DICOM SEG output supports plain labels only`);
    if (value !== 0) out.push({ value, name });
  }
  return out.sort((a, b) => a.value - b.value);
}

/** A predicted label map (on the series' grid) as a DICOM SEG; the model name is the algorithm version. */
export function predictionToSeg(
  labelMap: Uint16Array | Uint8Array,
  reference: { shape: [number, number, number]; affine: number[][] },
  series: DicomSeriesVolume,
  labels: Record<string, number | number[]>,
  modelName: string,
): WrittenSeg {
  return writeSegmentation({ labelMap, shape: reference.shape, affine: reference.affine, series, labels: segLabels(labels), algorithmVersion: modelName });
}
