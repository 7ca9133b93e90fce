// DICOM in and out of one prediction: a zip of Part 10 files (how Predict receives a series) is
// read as a series and written as the NIfTI file the predictor reads, and the predicted label map
// is written as a DICOM SEG referencing that series.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { encodeNifti } from '../nifti.js';
import { writeFileAtomic } from '../atomic.js';
import { DicomError } from './errors.js';
import { checkSegReferences, writeSegmentation, type WrittenSeg } from './seg.js';
import { readDicomSeries, type DicomFile, type DicomSeriesVolume, type ReadSeriesOptions } from './series.js';

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
 * Reads the series in `files` and writes it as `dir`/dicom_0000.nii.gz for the predictor.
 * `forSeg`: the result will become a SEG, so the series must have the UIDs a SEG references.
 */
export async function seriesToNifti(files: DicomFile[], dir: string, options: ReadSeriesOptions & { forSeg?: boolean } = {}): Promise<{ niftiFile: string; series: DicomSeriesVolume }> {
  const { forSeg, ...read } = options;
  const series = await readDicomSeries(files, read);
  if (forSeg) checkSegReferences(series.references);
  const niftiFile = join(dir, 'dicom_0000.nii.gz');
  const datatype = series.data instanceof Int16Array ? 'int16' : 'float32';
  await writeFileAtomic(niftiFile, encodeNifti({ data: series.data, shape: series.shape, channels: 1, spacing: series.spacing, affine: series.affine }, { datatype }, true, niftiFile));
  return { niftiFile, series };
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
