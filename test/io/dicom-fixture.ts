// The real example CT series (../shared/data/dicom_ct_example, JPEG 2000 lossless, 20 slices) as
// DicomFiles, and copies of it rewritten with dcmjs: its anonymiser blanked the Study, Series and
// SOP Instance UIDs, which a PACS (and a SEG referencing the series) needs, so tests that store or
// reference the series give it UIDs first.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import type { DicomFile } from '../../server/io/dicom/series.js';
import { SHARED } from '../helpers.js';

export const EXAMPLE_SERIES = join(SHARED, 'data', 'dicom_ct_example');
export const EXAMPLE_SEG = join(SHARED, 'data', 'dicom_ct_example_seg.nii.gz');

/** The 20 files of the example series, by file name. */
export function exampleFiles(): DicomFile[] {
  return readdirSync(EXAMPLE_SERIES)
    .sort()
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(EXAMPLE_SERIES, name))) }));
}

/** A copy of `file` with the given top-level data elements (tag -> { vr, Value }) set. */
export function rewrite(file: DicomFile, elements: Record<string, { vr: string; Value: unknown[] }>, name = file.name): DicomFile {
  const buffer = file.bytes.buffer.slice(file.bytes.byteOffset, file.bytes.byteOffset + file.bytes.byteLength) as ArrayBuffer;
  const dict = dcmjs.data.DicomMessage.readFile(buffer);
  for (const [tag, element] of Object.entries(elements)) {
    dict.dict[tag] = element;
    // File meta copies of the SOP Class and Instance UIDs follow the dataset's.
    if (tag === '00080016') dict.meta['00020002'] = element;
    if (tag === '00080018') dict.meta['00020003'] = element;
  }
  return { name, bytes: new Uint8Array(dict.write()) };
}

/** Fixed UIDs for the example series, so tests can look them up. */
export const EXAMPLE_UIDS = {
  study: '2.25.301846279157302616735138263081223645571',
  series: '2.25.193547812640993152338710528117230916713',
};

/** The example series with Study, Series, SOP Class and SOP Instance UIDs and a PatientID set. */
export function exampleWithUids(): DicomFile[] {
  return exampleFiles().map((file) => {
    const meta = dcmjs.data.DicomMessage.readFile(file.bytes.buffer.slice(file.bytes.byteOffset, file.bytes.byteOffset + file.bytes.byteLength) as ArrayBuffer).meta;
    const sop = String(meta['00020003'].Value![0]);
    const sopClass = String(meta['00020002'].Value![0]);
    return rewrite(file, {
      '00080016': { vr: 'UI', Value: [sopClass] },
      '00080018': { vr: 'UI', Value: [sop] },
      '0020000D': { vr: 'UI', Value: [EXAMPLE_UIDS.study] },
      '0020000E': { vr: 'UI', Value: [EXAMPLE_UIDS.series] },
      '00100020': { vr: 'LO', Value: ['NNUNET-TEST-1'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Test^Example' }] },
    });
  });
}

/** UIDs of the cropped copy (a different series of the same study). */
export const CROPPED_UIDS = {
  study: EXAMPLE_UIDS.study,
  series: '2.25.268094715349912776398264108837455163009',
  /** SOP Instance UID of slice file i (in file-name order). */
  instance: (i: number) => `2.25.268094715349912776398264108837455163009${String(100 + i)}`,
};

/**
 * A smaller series derived from the example: `size` x `size` pixels cut from the middle of each
 * slice, written uncompressed (Explicit VR Little Endian) with ImagePositionPatient moved to the
 * cut's first pixel; same study, new series and instance UIDs. It keeps predictions in tests fast
 * (a 512x512 CT resampled to a 1 mm model is 10 M voxels) and exercises the native pixel path.
 */
export async function croppedExample(size = 96): Promise<DicomFile[]> {
  const { storedValues } = await import('../../server/io/dicom/pixels.js');
  return Promise.all(
    exampleWithUids().map(async (file, i) => {
      const buffer = file.bytes.buffer.slice(file.bytes.byteOffset, file.bytes.byteOffset + file.bytes.byteLength) as ArrayBuffer;
      const dict = dcmjs.data.DicomMessage.readFile(buffer);
      const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
      const rows = Number(ds.Rows);
      const columns = Number(ds.Columns);
      const values = await storedValues(file.name, String(dict.meta['00020010'].Value![0]), ds.PixelData, { rows, columns, bitsAllocated: 16, bitsStored: Number(ds.BitsStored), signed: false });
      const r0 = Math.floor((rows - size) / 2);
      const c0 = Math.floor((columns - size) / 2);
      const cut = new Uint16Array(size * size);
      for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) cut[r * size + c] = values[(r0 + r) * columns + c0 + c];
      const [dy, dx] = (ds.PixelSpacing as number[]).map(Number);
      const iop = (ds.ImageOrientationPatient as number[]).map(Number);
      const ipp = (ds.ImagePositionPatient as number[]).map(Number).map((p, a) => p + c0 * dx * iop[a] + r0 * dy * iop[3 + a]);
      const set = (tag: string, vr: string, value: unknown[]) => (dict.dict[tag] = { vr, Value: value });
      set('00280010', 'US', [size]);
      set('00280011', 'US', [size]);
      set('00200032', 'DS', ipp);
      set('0020000E', 'UI', [CROPPED_UIDS.series]);
      set('00080018', 'UI', [CROPPED_UIDS.instance(i)]);
      set('7FE00010', 'OW', [cut.buffer]);
      delete dict.dict['00280106']; // Smallest/LargestImagePixelValue describe the whole slice
      delete dict.dict['00280107'];
      dict.meta['00020003'] = { vr: 'UI', Value: [CROPPED_UIDS.instance(i)] };
      dict.meta['00020010'] = { vr: 'UI', Value: ['1.2.840.10008.1.2.1'] };
      return { name: `cropped-${i}.dcm`, bytes: new Uint8Array(dict.write()) };
    }),
  );
}
