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
