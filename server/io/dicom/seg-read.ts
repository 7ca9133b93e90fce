// Reads a BINARY DICOM SEG back into a label map on its source series' grid (the inverse of
// seg.ts): frames are placed by their SegmentIdentificationSequence and by matching their
// PlanePositionSequence to the source slices. Used to check what we send to a PACS, and by clients
// that get a SEG back from Predict.
import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { DicomError } from './errors.js';
import { SEGMENTATION_STORAGE } from './seg.js';

export interface ReadSeg {
  /** Label map (k, j, i), rows flipped like readDicomSeries; value = SegmentNumber (0 = none). */
  labelMap: Uint16Array;
  segments: { number: number; label: string; algorithmType: string; algorithmName: string }[];
  dataset: NaturalDataset;
  frames: number;
}

/**
 * `imagePositions`: the source slices' ImagePositionPatient in k order (DicomSeriesReferences).
 * Where segments overlap, the higher segment number wins.
 */
export function readSegmentation(name: string, bytes: Uint8Array, imagePositions: number[][]): ReadSeg {
  let dataset: NaturalDataset;
  try {
    const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  } catch (err) {
    throw new DicomError(name, `truncated or corrupt DICOM file (${err instanceof Error ? err.message : String(err)})`);
  }
  if (dataset.SOPClassUID !== SEGMENTATION_STORAGE) throw new DicomError(name, `SOP Class ${String(dataset.SOPClassUID)} is not Segmentation Storage`);
  if (dataset.SegmentationType !== 'BINARY') throw new DicomError(name, `SegmentationType ${String(dataset.SegmentationType)}: only BINARY is read`);
  const rows = Number(dataset.Rows);
  const columns = Number(dataset.Columns);
  const frames = Number(dataset.NumberOfFrames);
  const slices = imagePositions.length;
  const perFrame = (dataset.PerFrameFunctionalGroupsSequence ?? []) as NaturalDataset[];
  if (perFrame.length !== frames) throw new DicomError(name, `${perFrame.length} per-frame functional groups for ${frames} frames`);
  const pixelData = dataset.PixelData as ArrayBuffer[] | undefined;
  if (!pixelData?.[0]) throw new DicomError(name, 'has no PixelData');
  const bits = new Uint8Array(pixelData[0]);
  const frameBits = rows * columns;
  if (bits.length * 8 < frameBits * frames) throw new DicomError(name, `PixelData has ${bits.length} bytes, ${frames} frames of ${rows}x${columns} need ${Math.ceil((frameBits * frames) / 8)}`);
  const labelMap = new Uint16Array(slices * frameBits);
  const order = perFrame.map((group, f) => {
    const segment = Number((group.SegmentIdentificationSequence as NaturalDataset[])[0].ReferencedSegmentNumber);
    const position = ((group.PlanePositionSequence as NaturalDataset[])[0].ImagePositionPatient as number[]).map(Number);
    const k = imagePositions.findIndex((p) => Math.hypot(p[0] - position[0], p[1] - position[1], p[2] - position[2]) < 1e-3);
    if (k < 0) throw new DicomError(name, `frame ${f + 1} at [${position.join(', ')}] matches no source slice`);
    return { f, segment, k };
  });
  order.sort((a, b) => a.segment - b.segment);
  for (const { f, segment, k } of order) {
    let bit = f * frameBits;
    for (let r = 0; r < rows; r++) {
      const dst = k * frameBits + (rows - 1 - r) * columns;
      for (let c = 0; c < columns; c++, bit++) if (bits[bit >> 3] & (1 << (bit & 7))) labelMap[dst + c] = segment;
    }
  }
  const segments = ((dataset.SegmentSequence ?? []) as NaturalDataset[]).map((s) => ({
    number: Number(s.SegmentNumber),
    label: String(s.SegmentLabel ?? ''),
    algorithmType: String(s.SegmentAlgorithmType ?? ''),
    algorithmName: String(s.SegmentAlgorithmName ?? ''),
  }));
  return { labelMap, segments, dataset, frames };
}
