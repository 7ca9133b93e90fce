// Reads a DICOM series (single-frame Part 10 instances) into a volume in nnU-Net's array
// convention with the affine dcm2niix writes for it, plus the references a DICOM SEG of the result
// needs. Slices are sorted along the slice normal (row x column direction of
// ImageOrientationPatient) by the projection of ImagePositionPatient, and the slice spacing comes
// from those positions, never from SliceThickness (which may overlap or leave gaps).
//
// Array layout, as server/io/nifti.ts: (k, j, i) with i fastest, where i is the DICOM column,
// k the slice in ascending order along the normal, and j the DICOM row reversed (dcm2niix's default
// "flip Y", so that a NIfTI written from our volume is voxel for voxel dcm2niix's).
import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { VolumeTooLargeError } from '../errors.js';
import type { VoxelArray } from '../nifti-types.js';
import { DicomError } from './errors.js';
import { storedValues, type PixelFormat } from './pixels.js';

dcmjs.log.setLevel('error');

/** One Part 10 file as received; `name` identifies it in errors (a file name or zip entry). */
export interface DicomFile {
  name: string;
  bytes: Uint8Array;
}

/** What a DICOM SEG of this series must carry to reference it (patient, study, frame of reference, instances). */
export interface DicomSeriesReferences {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  frameOfReferenceUID: string;
  modality: string;
  /** SOP Class of the source images (all the same). */
  sopClassUID: string;
  /** One per slice, in the volume's k order. */
  sopInstanceUIDs: string[];
  /** ImagePositionPatient (LPS mm) per slice, in k order. */
  imagePositions: [number, number, number][];
  /** ImageOrientationPatient: row direction then column direction (LPS). */
  imageOrientation: [number, number, number, number, number, number];
  /** PixelSpacing as DICOM orders it: [between rows, between columns] (mm). */
  pixelSpacing: [number, number];
  /** SliceThickness of the source images if given, else the spacing between slices. */
  sliceThickness: number;
  spacingBetweenSlices: number;
  rows: number;
  columns: number;
  /** Patient and General Study module attributes of the source, as dcmjs naturalizes them. */
  patientStudy: NaturalDataset;
}

export interface DicomSeriesVolume {
  /** Voxels in HU for CT (RescaleSlope/Intercept applied): Int16Array when they fit, else Float32Array. */
  data: VoxelArray;
  /** nnU-Net order (k, j, i) = (slices, rows, columns). */
  shape: [number, number, number];
  /** mm, same order as shape. */
  spacing: [number, number, number];
  /** 4x4 row-major, NIfTI voxel (i, j, k, 1) -> RAS+ mm, as dcm2niix writes it. */
  affine: number[][];
  references: DicomSeriesReferences;
}

export interface ReadSeriesOptions {
  /** Pick one series when the files hold several. */
  seriesInstanceUID?: string;
  /** Refuse larger volumes before allocating (default NNUNET_MAX_VOXELS, else 1024**3). */
  maxVoxels?: number;
  /** Allowed relative deviation of a slice gap from the median gap (default 0.05, plus 0.01 mm). */
  spacingTolerance?: number;
}

/** Single-frame image storage SOP classes with patient geometry (Image Plane module). */
const IMAGE_SOP_CLASSES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.2': 'CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.4': 'MR Image Storage',
  '1.2.840.10008.5.1.4.1.1.128': 'Positron Emission Tomography Image Storage',
};

/** Classes refused with their name, so the error says what was sent instead of an image. */
const OTHER_SOP_CLASSES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.2.1': 'Enhanced CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.2.2': 'Legacy Converted Enhanced CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.4.1': 'Enhanced MR Image Storage',
  '1.2.840.10008.5.1.4.1.1.4.4': 'Legacy Converted Enhanced MR Image Storage',
  '1.2.840.10008.5.1.4.1.1.130': 'Enhanced PET Image Storage',
  '1.2.840.10008.5.1.4.1.1.128.1': 'Legacy Converted Enhanced PET Image Storage',
  '1.2.840.10008.5.1.4.1.1.7': 'Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.66': 'Raw Data Storage',
  '1.2.840.10008.5.1.4.1.1.66.4': 'Segmentation Storage',
  '1.2.840.10008.5.1.4.1.1.481.3': 'RT Structure Set Storage',
  '1.2.840.10008.5.1.4.1.1.88.11': 'Basic Text SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.22': 'Enhanced SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.33': 'Comprehensive SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.59': 'Key Object Selection Document Storage',
  '1.2.840.10008.5.1.4.1.1.11.1': 'Grayscale Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.104.1': 'Encapsulated PDF Storage',
};
const ENHANCED = new Set(['1.2.840.10008.5.1.4.1.1.2.1', '1.2.840.10008.5.1.4.1.1.2.2', '1.2.840.10008.5.1.4.1.1.4.1', '1.2.840.10008.5.1.4.1.1.4.4', '1.2.840.10008.5.1.4.1.1.130', '1.2.840.10008.5.1.4.1.1.128.1']);

/** Patient and General Study module attributes copied into derived objects. */
const PATIENT_STUDY_KEYWORDS = [
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'PatientBirthDate',
  'PatientSex',
  'PatientAge',
  'StudyInstanceUID',
  'StudyDate',
  'StudyTime',
  'ReferringPhysicianName',
  'StudyID',
  'AccessionNumber',
  'StudyDescription',
];

interface Instance {
  file: string;
  dataset: NaturalDataset;
  transferSyntax: string;
  sopClassUID: string;
  sopInstanceUID: string;
  seriesInstanceUID: string;
  position: [number, number, number];
  orientation: [number, number, number, number, number, number];
  pixelSpacing: [number, number];
  format: PixelFormat;
  slope: number;
  intercept: number;
  /** Projection of the position on the slice normal. */
  along: number;
}

/** Parses every file, groups them into series, and reads the one series (or the selected one). */
export async function readDicomSeries(files: DicomFile[], options: ReadSeriesOptions = {}): Promise<DicomSeriesVolume> {
  if (files.length === 0) throw new DicomError('series', 'no DICOM files were given');
  const instances = files.map(parseInstance);
  const series = pickSeries(instances, options.seriesInstanceUID);
  checkUniform(series);
  const normal = cross(series[0].orientation.slice(0, 3), series[0].orientation.slice(3, 6));
  for (const inst of series) inst.along = dot(inst.position, normal);
  series.sort((a, b) => a.along - b.along);
  const first = series[0];
  const spacingK = sliceSpacing(series, normal, options.spacingTolerance ?? 0.05);

  const { rows, columns } = first.format;
  const voxels = rows * columns * series.length;
  const limit = options.maxVoxels ?? maxVoxelsFromEnv();
  if (voxels > limit) throw new VolumeTooLargeError(`series ${first.seriesInstanceUID}`, voxels, limit);

  const data = outputArray(series, voxels);
  const slice = rows * columns;
  for (let k = 0; k < series.length; k++) {
    const inst = series[k];
    const values = await storedValues(inst.file, inst.transferSyntax, inst.dataset.PixelData, inst.format);
    const base = k * slice;
    for (let r = 0; r < rows; r++) {
      // dcm2niix flips the rows: DICOM row r is array row rows-1-r.
      const src = r * columns;
      const dst = base + (rows - 1 - r) * columns;
      for (let c = 0; c < columns; c++) data[dst + c] = values[src + c] * inst.slope + inst.intercept;
    }
    inst.dataset.PixelData = undefined; // release the compressed bytes as we go
  }

  const [dy, dx] = first.pixelSpacing; // DICOM: between rows, between columns
  const rowDir = first.orientation.slice(0, 3);
  const colDir = first.orientation.slice(3, 6);
  const origin = first.position;
  // LPS voxel (c, r, s) -> origin + c*dx*rowDir + r*dy*colDir + s*dz*normal, with r = rows-1-j.
  const lps = [0, 1, 2].map((a) => [dx * rowDir[a], -dy * colDir[a], spacingK * normal[a], origin[a] + (rows - 1) * dy * colDir[a]]);
  // LPS -> RAS: negate x and y.
  const affine = [lps[0].map((v) => -v + 0), lps[1].map((v) => -v + 0), lps[2].map((v) => v + 0), [0, 0, 0, 1]];

  const dataset = first.dataset;
  const patientStudy: NaturalDataset = {};
  // Plain JSON copies: dcmjs wraps some values (person names, sequences) in proxies, which cannot
  // cross to another thread.
  for (const key of PATIENT_STUDY_KEYWORDS) if (dataset[key] !== undefined) patientStudy[key] = JSON.parse(JSON.stringify(dataset[key])) as unknown;
  const thickness = Number(dataset.SliceThickness);
  return {
    data,
    shape: [series.length, rows, columns],
    spacing: [spacingK, dy, dx],
    affine,
    references: {
      studyInstanceUID: str(dataset.StudyInstanceUID),
      seriesInstanceUID: first.seriesInstanceUID,
      frameOfReferenceUID: str(dataset.FrameOfReferenceUID),
      modality: str(dataset.Modality),
      sopClassUID: first.sopClassUID,
      sopInstanceUIDs: series.map((s) => s.sopInstanceUID),
      imagePositions: series.map((s) => s.position),
      imageOrientation: first.orientation,
      pixelSpacing: first.pixelSpacing,
      sliceThickness: Number.isFinite(thickness) && thickness > 0 ? thickness : spacingK,
      spacingBetweenSlices: spacingK,
      rows,
      columns,
      patientStudy,
    },
  };
}

/** "DICM" at byte 128 of a Part 10 file. */
function hasPart10Marker(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

const str = (v: unknown): string => (typeof v === 'string' ? v.trim() : '');

function numbers(file: string, dataset: NaturalDataset, keyword: string, count: number): number[] {
  const raw = dataset[keyword];
  const values = (Array.isArray(raw) ? raw : raw === undefined || raw === null ? [] : [raw]).map(Number);
  if (values.length !== count || !values.every(Number.isFinite)) {
    throw new DicomError(file, `${keyword} must have ${count} numeric value(s), got ${JSON.stringify(raw ?? null)}`);
  }
  return values;
}

function parseInstance(file: DicomFile): Instance {
  const name = file.name;
  if (!hasPart10Marker(file.bytes)) throw new DicomError(name, `not a DICOM Part 10 file (no "DICM" marker at byte 128; ${file.bytes.length} bytes)`);
  let dict;
  try {
    // A private copy: dcmjs keeps views into the buffer it is given.
    const buffer = file.bytes.buffer.slice(file.bytes.byteOffset, file.bytes.byteOffset + file.bytes.byteLength) as ArrayBuffer;
    dict = dcmjs.data.DicomMessage.readFile(buffer);
  } catch (err) {
    throw new DicomError(name, `truncated or corrupt DICOM file (${err instanceof Error ? err.message : String(err)})`);
  }
  const meta = dict.meta;
  const metaValue = (tag: string) => str(meta[tag]?.Value?.[0]);
  const dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  // Some anonymisers blank the dataset's UIDs but keep the file meta information.
  const sopClassUID = str(dataset.SOPClassUID) || metaValue('00020002');
  const sopInstanceUID = str(dataset.SOPInstanceUID) || metaValue('00020003');
  const transferSyntax = metaValue('00020010');
  const what = (uid: string) => `${uid} (${IMAGE_SOP_CLASSES[uid] ?? OTHER_SOP_CLASSES[uid] ?? 'unknown SOP class'})`;
  if (ENHANCED.has(sopClassUID)) {
    throw new DicomError(name, `SOP Class ${what(sopClassUID)} is an enhanced multi-frame image, which is not supported; export the series as classic single-frame CT/MR/PET images`);
  }
  if (!IMAGE_SOP_CLASSES[sopClassUID]) {
    throw new DicomError(name, `SOP Class ${what(sopClassUID)} is not an image series this server reads (supported: ${Object.values(IMAGE_SOP_CLASSES).join(', ')})`);
  }
  const frames = Number(dataset.NumberOfFrames ?? 1);
  if (frames > 1) throw new DicomError(name, `has ${frames} frames; only single-frame images are supported`);
  const photometric = str(dataset.PhotometricInterpretation);
  // MONOCHROME1 only inverts the display; the stored values (and HU) mean the same, as dcm2niix reads them.
  if (photometric !== 'MONOCHROME2' && photometric !== 'MONOCHROME1') {
    throw new DicomError(name, `PhotometricInterpretation ${photometric || '(missing)'} is not supported (only MONOCHROME1/MONOCHROME2 grey-scale images)`);
  }
  const samples = Number(dataset.SamplesPerPixel ?? 1);
  if (samples !== 1) throw new DicomError(name, `SamplesPerPixel is ${samples}; only one sample per pixel is supported`);
  const bitsAllocated = Number(dataset.BitsAllocated);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new DicomError(name, `BitsAllocated ${String(dataset.BitsAllocated)} is not supported (8 or 16)`);
  const bitsStored = Number(dataset.BitsStored ?? bitsAllocated);
  if (!(bitsStored >= 1 && bitsStored <= bitsAllocated)) throw new DicomError(name, `BitsStored ${bitsStored} must be between 1 and BitsAllocated ${bitsAllocated}`);
  const [rows] = numbers(name, dataset, 'Rows', 1);
  const [columns] = numbers(name, dataset, 'Columns', 1);
  const slope = dataset.RescaleSlope === undefined ? 1 : numbers(name, dataset, 'RescaleSlope', 1)[0];
  const intercept = dataset.RescaleIntercept === undefined ? 0 : numbers(name, dataset, 'RescaleIntercept', 1)[0];
  if (dataset.PixelData === undefined) throw new DicomError(name, 'truncated or incomplete: it has no PixelData');
  const encapsulated = transferSyntax.startsWith('1.2.840.10008.1.2.4.') || transferSyntax === '1.2.840.10008.1.2.5';
  if (encapsulated && !endsWithSequenceDelimiter(file.bytes) && !Object.keys(dict.dict).some((tag) => tag > '7FE00010')) {
    // Encapsulated pixel data ends with a sequence delimitation item; dcmjs reads a cut-off fragment without complaint.
    throw new DicomError(name, 'truncated: the encapsulated PixelData does not end with its sequence delimiter');
  }
  return {
    file: name,
    dataset,
    transferSyntax,
    sopClassUID,
    sopInstanceUID,
    seriesInstanceUID: str(dataset.SeriesInstanceUID),
    position: numbers(name, dataset, 'ImagePositionPatient', 3) as Instance['position'],
    orientation: numbers(name, dataset, 'ImageOrientationPatient', 6) as Instance['orientation'],
    pixelSpacing: numbers(name, dataset, 'PixelSpacing', 2) as Instance['pixelSpacing'],
    format: { rows, columns, bitsAllocated, bitsStored, signed: Number(dataset.PixelRepresentation ?? 0) === 1 },
    slope,
    intercept,
    along: 0,
  };
}

function endsWithSequenceDelimiter(bytes: Uint8Array): boolean {
  const n = bytes.length;
  const tail = [0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0];
  return n >= 8 && tail.every((b, i) => bytes[n - 8 + i] === b);
}

function pickSeries(instances: Instance[], wanted: string | undefined): Instance[] {
  const groups = new Map<string, Instance[]>();
  for (const inst of instances) groups.set(inst.seriesInstanceUID, [...(groups.get(inst.seriesInstanceUID) ?? []), inst]);
  const describe = () =>
    [...groups.entries()].map(([uid, list]) => `${uid || '(no SeriesInstanceUID)'}: ${list.length} instance(s), e.g. ${list[0].file}${list[0].dataset.SeriesDescription ? ` "${str(list[0].dataset.SeriesDescription)}"` : ''}`).join('; ');
  if (wanted !== undefined && wanted !== '') {
    const chosen = groups.get(wanted);
    if (!chosen) throw new DicomError('series', `SeriesInstanceUID ${wanted} is not among the files: ${describe()}`);
    return chosen;
  }
  if (groups.size > 1) throw new DicomError('series', `the files hold ${groups.size} series; select one by SeriesInstanceUID: ${describe()}`);
  return instances;
}

/** Every slice must share the first one's orientation, size and pixel spacing. */
function checkUniform(series: Instance[]): void {
  const ref = series[0];
  for (const inst of series.slice(1)) {
    if (inst.orientation.some((v, i) => Math.abs(v - ref.orientation[i]) > 1e-4)) {
      throw new DicomError(inst.file, `mixed orientation: ImageOrientationPatient [${inst.orientation.join(', ')}] differs from [${ref.orientation.join(', ')}] of ${ref.file}`);
    }
    if (inst.format.rows !== ref.format.rows || inst.format.columns !== ref.format.columns) {
      throw new DicomError(inst.file, `mixed sizes: ${inst.format.rows}x${inst.format.columns} (Rows x Columns) differs from ${ref.format.rows}x${ref.format.columns} of ${ref.file}`);
    }
    if (inst.pixelSpacing.some((v, i) => Math.abs(v - ref.pixelSpacing[i]) > 1e-4)) {
      throw new DicomError(inst.file, `mixed PixelSpacing: [${inst.pixelSpacing.join(', ')}] differs from [${ref.pixelSpacing.join(', ')}] of ${ref.file}`);
    }
  }
}

/** The spacing between sorted slices, checking for duplicates, gaps, uneven steps and tilt. */
function sliceSpacing(series: Instance[], normal: number[], tolerance: number): number {
  if (series.length === 1) {
    const thickness = Number(series[0].dataset.SpacingBetweenSlices ?? series[0].dataset.SliceThickness);
    return Number.isFinite(thickness) && thickness > 0 ? thickness : 1;
  }
  const gaps = series.slice(1).map((s, i) => s.along - series[i].along);
  const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)];
  const at = (i: number) => `${series[i].file} (position ${series[i].along.toFixed(3)} mm along the normal)`;
  for (let i = 0; i < gaps.length; i++) {
    if (gaps[i] < 1e-3) throw new DicomError(series[i + 1].file, `duplicate slice: same position as ${at(i)}`);
  }
  if (median < 1e-3) throw new DicomError(series[0].file, 'slices do not advance along the slice normal');
  const allowed = tolerance * median + 0.01;
  for (let i = 0; i < gaps.length; i++) {
    if (Math.abs(gaps[i] - median) <= allowed) continue;
    const missing = Math.round(gaps[i] / median) - 1;
    if (missing >= 1 && Math.abs(gaps[i] - (missing + 1) * median) <= allowed) {
      throw new DicomError(series[i].file, `missing slice: ${missing} slice(s) missing between ${at(i)} and ${at(i + 1)} (gap ${gaps[i].toFixed(3)} mm, slice spacing ${median.toFixed(3)} mm)`);
    }
    throw new DicomError(series[i].file, `uneven slice spacing: gap of ${gaps[i].toFixed(3)} mm between ${at(i)} and ${at(i + 1)}, most gaps are ${median.toFixed(3)} mm`);
  }
  // Positions must move along the normal: an in-plane drift is a gantry tilt, which needs resampling.
  const first = series[0].position;
  const last = series[series.length - 1].position;
  const step = (series[series.length - 1].along - series[0].along) / (series.length - 1);
  const drift = Math.hypot(...[0, 1, 2].map((a) => last[a] - first[a] - step * (series.length - 1) * normal[a]));
  if (drift > allowed) {
    throw new DicomError(series[series.length - 1].file, `positions drift ${drift.toFixed(3)} mm off the slice normal across the series (gantry tilt or sheared volume), which is not supported`);
  }
  return step;
}

/** Int16Array when every slice's rescaled range is whole numbers within int16, else Float32Array. */
function outputArray(series: Instance[], voxels: number): Int16Array | Float32Array {
  const fits = series.every((s) => {
    const { bitsStored, signed } = s.format;
    const lo = signed ? -(2 ** (bitsStored - 1)) : 0;
    const hi = signed ? 2 ** (bitsStored - 1) - 1 : 2 ** bitsStored - 1;
    const ends = [lo * s.slope + s.intercept, hi * s.slope + s.intercept];
    return Number.isInteger(s.slope) && Number.isInteger(s.intercept) && ends.every((v) => v >= -32768 && v <= 32767);
  });
  return fits ? new Int16Array(voxels) : new Float32Array(voxels);
}

function maxVoxelsFromEnv(): number {
  const v = Number(process.env.NNUNET_MAX_VOXELS);
  return Number.isSafeInteger(v) && v > 0 ? v : 1024 ** 3;
}

const cross = (a: number[], b: number[]) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const dot = (a: number[], b: number[]) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
