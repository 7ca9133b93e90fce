// Worker thread entry: reads a DICOM series (decoding JPEG 2000 costs ~65 ms per 512x512 slice on
// one core, half a minute for a long CT) and writes it as the predictor's NIfTI file, off the
// server's event loop. One thread per series, started by readSeriesToNifti in case.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { writeFileAtomic } from '../atomic.js';
import { encodeNifti } from '../nifti.js';
import { readDicomSeries, type ReadSeriesOptions } from './series.js';

export interface SeriesWorkerTask {
  files: { name: string; bytes: Uint8Array }[];
  options: ReadSeriesOptions;
  niftiFile: string;
}

export interface SeriesWorkerError {
  name: string;
  message: string;
  file?: string;
  reason?: string;
}

const task = workerData as SeriesWorkerTask;
try {
  const series = await readDicomSeries(task.files, task.options);
  const datatype = series.data instanceof Int16Array ? 'int16' : 'float32';
  await writeFileAtomic(task.niftiFile, encodeNifti({ data: series.data, shape: series.shape, channels: 1, spacing: series.spacing, affine: series.affine }, { datatype }, true, task.niftiFile));
  parentPort!.postMessage({ ok: true, series }, [series.data.buffer as ArrayBuffer]);
} catch (err) {
  const e = err as Error & { file?: string; reason?: string };
  const error: SeriesWorkerError = { name: e.name ?? 'Error', message: e.message ?? String(err), file: e.file, reason: e.reason };
  parentPort!.postMessage({ ok: false, error });
}
