// Writes a label map on a source series' grid as a DICOM Segmentation (BINARY, bit-packed frames,
// one segment per foreground label), in the same Patient, Study and Frame of Reference as the
// source, referencing each source instance. The dataset is built by hand and written with dcmjs's
// DicomDict: dcmjs's derivations.Segmentation derives from Cornerstone-style image metadata,
// copies every attribute of the source (private tags included) and computes frame order itself,
// where we need the frame <-> slice mapping of our own reader (rows flipped as dcm2niix does).
import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import type { VoxelArray } from '../nifti-types.js';
import { DicomError } from './errors.js';
import type { DicomSeriesReferences } from './series.js';
import { newUid } from './uid.js';

export const SEGMENTATION_STORAGE = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Our implementation class UID (a fixed 2.25 UID) and version name in the file meta information. */
const IMPLEMENTATION_CLASS_UID = '2.25.133227414566203926011542669542474786331';
const IMPLEMENTATION_VERSION = 'NNUNET_SERVER';

export interface SegLabel {
  /** Value in the label map. */
  value: number;
  /** Segment label (dataset.json's label name). */
  name: string;
}

export interface WriteSegOptions {
  /** Label map in nnU-Net order (k, j, i) on the source series' grid (as readDicomSeries returns it). */
  labelMap: VoxelArray;
  shape: [number, number, number];
  /** Affine of the label map; checked against the series' affine. */
  affine: number[][];
  /** The source series: its affine and references, as readDicomSeries returns them. */
  series: { shape: [number, number, number]; affine: number[][]; references: DicomSeriesReferences };
  /** Foreground labels, one segment each, in this order (SegmentNumber 1, 2, ...). */
  labels: SegLabel[];
  /** Algorithm version: the model's name. */
  algorithmVersion: string;
  seriesDescription?: string;
  seriesNumber?: number;
  /**
   * Leave out frames where a segment has no voxel (a segment with no voxel at all keeps one empty
   * frame, so every segment is present and the object has frames). Default true.
   */
  skipEmptyFrames?: boolean;
}

export interface WrittenSeg {
  bytes: Uint8Array;
  sopInstanceUID: string;
  seriesInstanceUID: string;
  frames: number;
}

/** Writes the SEG; DicomError when the label map is not on the series' grid or the source lacks required UIDs. */
export function writeSegmentation(options: WriteSegOptions): WrittenSeg {
  const { series, labelMap, shape } = options;
  const refs = series.references;
  checkGrid(options);
  checkSegReferences(refs);
  if (options.labels.length === 0) throw new DicomError('labels', 'a DICOM SEG needs at least one foreground label');


  const [slices, rows, columns] = shape;
  const sliceVoxels = rows * columns;
  const skip = options.skipEmptyFrames ?? true;
  // Frames: for each segment, each slice in ascending order along the normal.
  const frames: { segment: number; value: number; slice: number }[] = [];
  options.labels.forEach((label, index) => {
    const present: number[] = [];
    for (let k = 0; k < slices; k++) {
      if (!skip || sliceHas(labelMap, k * sliceVoxels, sliceVoxels, label.value)) present.push(k);
    }
    if (present.length === 0) present.push(0);
    for (const k of present) frames.push({ segment: index + 1, value: label.value, slice: k });
  });

  const pixelData = packFrames(labelMap, frames, rows, columns);
  const sopInstanceUID = newUid();
  const seriesInstanceUID = newUid();
  const now = new Date();
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const dimensionOrganizationUID = newUid();
  const sourceImage = (k: number) => ({
    ReferencedSOPClassUID: refs.sopClassUID,
    ReferencedSOPInstanceUID: refs.sopInstanceUIDs[k],
    PurposeOfReferenceCodeSequence: [{ CodeValue: '121322', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Source image for image processing operation' }],
  });

  const dataset: NaturalDataset = {
    // Patient and General Study modules, as in the source (empty type 2 attributes stay present).
    PatientName: [],
    PatientID: '',
    PatientBirthDate: '',
    PatientSex: '',
    StudyDate: '',
    StudyTime: '',
    ReferringPhysicianName: [],
    StudyID: '',
    AccessionNumber: '',
    ...refs.patientStudy,
    StudyInstanceUID: refs.studyInstanceUID,
    // General Series / Segmentation Series
    Modality: 'SEG',
    SeriesInstanceUID: seriesInstanceUID,
    SeriesNumber: options.seriesNumber ?? 300,
    SeriesDescription: options.seriesDescription ?? `nnU-Net ${options.algorithmVersion}`.slice(0, 64),
    // Frame of Reference
    FrameOfReferenceUID: refs.frameOfReferenceUID,
    PositionReferenceIndicator: '',
    // General / Enhanced General Equipment
    Manufacturer: 'nnU-Net server',
    ManufacturerModelName: 'nnU-Net',
    DeviceSerialNumber: '0',
    SoftwareVersions: options.algorithmVersion.slice(0, 64),
    // General Image / Image Pixel / Segmentation Image
    InstanceNumber: 1,
    ContentDate: date,
    ContentTime: time,
    ImageType: ['DERIVED', 'PRIMARY'],
    ContentLabel: 'SEGMENTATION',
    ContentDescription: `nnU-Net ${options.algorithmVersion}`.slice(0, 64),
    ContentCreatorName: [],
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: columns,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    SegmentationType: 'BINARY',
    SegmentSequence: options.labels.map((label, index) => segmentItem(index + 1, label.name, options.algorithmVersion)),
    // Multi-frame Functional Groups and Dimensions
    NumberOfFrames: frames.length,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganizationUID }],
    DimensionIndexSequence: [
      { DimensionOrganizationUID: dimensionOrganizationUID, DimensionIndexPointer: 0x0062000b, FunctionalGroupPointer: 0x0062000a, DimensionDescriptionLabel: 'ReferencedSegmentNumber' },
      { DimensionOrganizationUID: dimensionOrganizationUID, DimensionIndexPointer: 0x00200032, FunctionalGroupPointer: 0x00209113, DimensionDescriptionLabel: 'ImagePositionPatient' },
    ],
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: refs.imageOrientation }],
        PixelMeasuresSequence: [{ PixelSpacing: refs.pixelSpacing, SliceThickness: refs.sliceThickness, SpacingBetweenSlices: refs.spacingBetweenSlices }],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map((f) => ({
      DerivationImageSequence: [{ SourceImageSequence: [sourceImage(f.slice)], DerivationCodeSequence: [{ CodeValue: '113076', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Segmentation' }] }],
      FrameContentSequence: [{ DimensionIndexValues: [f.segment, f.slice + 1] }],
      PlanePositionSequence: [{ ImagePositionPatient: refs.imagePositions[f.slice] }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.segment }],
    })),
    // Common Instance Reference
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: refs.seriesInstanceUID,
        ReferencedInstanceSequence: refs.sopInstanceUIDs.map((uid) => ({ ReferencedSOPClassUID: refs.sopClassUID, ReferencedSOPInstanceUID: uid })),
      },
    ],
    // SOP Common
    SOPClassUID: SEGMENTATION_STORAGE,
    SOPInstanceUID: sopInstanceUID,
    SpecificCharacterSet: 'ISO_IR 192',
    PixelData: [pixelData.buffer],
    _vrMap: { PixelData: 'OB' },
  };
  const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEGMENTATION_STORAGE,
    MediaStorageSOPInstanceUID: sopInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
  });
  const dict = new dcmjs.data.DicomDict(meta);
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return { bytes: new Uint8Array(dict.write()), sopInstanceUID, seriesInstanceUID, frames: frames.length };
}

/** The source's UIDs a SEG must carry; checked before a prediction is run for nothing. */
export function checkSegReferences(refs: DicomSeriesReferences): void {
  for (const [keyword, value] of [
    ['StudyInstanceUID', refs.studyInstanceUID],
    ['SeriesInstanceUID', refs.seriesInstanceUID],
    ['FrameOfReferenceUID', refs.frameOfReferenceUID],
  ] as const) {
    if (!value) throw new DicomError(`series ${refs.seriesInstanceUID || '(no SeriesInstanceUID)'}`, `the source has no ${keyword}; a DICOM SEG must reference it (fix the source series' UIDs first)`);
  }
  const empty = refs.sopInstanceUIDs.findIndex((uid) => !uid);
  if (empty >= 0) throw new DicomError(`slice ${empty}`, 'the source instance has no SOPInstanceUID; a DICOM SEG must reference it');
}

function checkGrid(options: WriteSegOptions): void {
  const { shape, series, affine, labelMap } = options;
  if (shape.some((n, a) => n !== series.shape[a])) {
    throw new DicomError('segmentation', `shape (k, j, i) [${shape.join(', ')}] differs from the source series' [${series.shape.join(', ')}]`);
  }
  if (labelMap.length !== shape[0] * shape[1] * shape[2]) throw new DicomError('segmentation', `has ${labelMap.length} voxels, its shape says ${shape[0] * shape[1] * shape[2]}`);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) {
      if (Math.abs(affine[r][c] - series.affine[r][c]) > 1e-3) {
        throw new DicomError('segmentation', `affine differs from the source series' (row ${r}, column ${c}: ${affine[r][c]} vs ${series.affine[r][c]}): it is not on the series' grid`);
      }
    }
  }
}

function sliceHas(labelMap: VoxelArray, start: number, length: number, value: number): boolean {
  for (let i = start; i < start + length; i++) if (labelMap[i] === value) return true;
  return false;
}

/**
 * Frames packed one bit per pixel, first pixel in the least significant bit, frames following
 * each other without padding (PS3.5 8.1.1: only the whole value is padded to an even length).
 * DICOM row r of slice k is row rows-1-r of the label map (the reader's flip).
 */
function packFrames(labelMap: VoxelArray, frames: { value: number; slice: number }[], rows: number, columns: number): Uint8Array {
  const frameBits = rows * columns;
  const totalBytes = Math.ceil((frameBits * frames.length) / 8);
  const out = new Uint8Array(totalBytes + (totalBytes % 2));
  let bit = 0;
  for (const f of frames) {
    const base = f.slice * frameBits;
    for (let r = 0; r < rows; r++) {
      const src = base + (rows - 1 - r) * columns;
      for (let c = 0; c < columns; c++, bit++) {
        if (labelMap[src + c] === f.value) out[bit >> 3] |= 1 << (bit & 7);
      }
    }
  }
  return out;
}

/**
 * One SegmentSequence item. The category and type codes are generic (SCT "Anatomical Structure" /
 * "Tissue"): dataset.json names labels in free text and carries no codes, so a specific code
 * would be a guess; the label name is in SegmentLabel.
 */
function segmentItem(number: number, name: string, version: string): NaturalDataset {
  return {
    SegmentNumber: number,
    SegmentLabel: name.slice(0, 64),
    SegmentAlgorithmType: 'AUTOMATIC',
    SegmentAlgorithmName: 'nnU-Net',
    SegmentationAlgorithmIdentificationSequence: [
      {
        AlgorithmFamilyCodeSequence: [{ CodeValue: '123110', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Artificial Intelligence' }],
        AlgorithmName: 'nnU-Net',
        AlgorithmVersion: version.slice(0, 64),
      },
    ],
    SegmentedPropertyCategoryCodeSequence: [{ CodeValue: '91723000', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Anatomical Structure' }],
    SegmentedPropertyTypeCodeSequence: [{ CodeValue: '85756007', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Tissue' }],
    RecommendedDisplayCIELabValue: cielab(number),
  };
}

/** A distinct colour per segment (golden-angle hues), as DICOM's scaled CIELab (PS3.3 C.10.7.1.1). */
function cielab(n: number): [number, number, number] {
  const hue = (n * 137.508) % 360;
  const [r, g, b] = hsvToRgb(hue, 0.75, 0.95);
  const lin = (u: number) => (u <= 0.04045 ? u / 12.92 : ((u + 0.055) / 1.055) ** 2.4);
  const [R, G, B] = [lin(r), lin(g), lin(b)];
  // sRGB (D65) -> XYZ -> CIELab, white point D65.
  const x = (0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047;
  const y = 0.2126 * R + 0.7152 * G + 0.0722 * B;
  const z = (0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883;
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);
  const L = 116 * f(y) - 16;
  const a = 500 * (f(x) - f(y));
  const bb = 200 * (f(y) - f(z));
  const clamp = (v: number) => Math.max(0, Math.min(65535, Math.round(v)));
  return [clamp((L * 65535) / 100), clamp(((a + 128) * 65535) / 255), clamp(((bb + 128) * 65535) / 255)];
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const c = v * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = v - c;
  const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
  return [r + m, g + m, b + m];
}
