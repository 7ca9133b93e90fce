// A case on disk: raw NIfTI channels (+ label) in, preprocessed files out. The output layout follows
// DESIGN.md rather than nnU-Net's blosc2/pickle: `<id>.npy` float32 (c, x, y, z), `<id>_seg.npy`
// int16 (1, x, y, z) and `<id>.json` with the properties; every file is written atomically.
import { join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import { LabelManager } from '../dataset/labels.js';
import type { DatasetJson } from '../dataset/dataset-json.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readNifti, toFloat32, type VoxelArray } from '../io/nifti.js';
import { writeNpy } from '../io/npy.js';
import type { Plans } from '../planning/plans.js';
import { preprocessCase, type CaseInput, type CaseProperties } from './preprocessor.js';

export interface RawCaseImages {
  /** One float32 array per channel, in nnU-Net's array order. */
  images: Float32Array[];
  seg: VoxelArray | undefined;
  input: CaseInput;
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-8 + 1e-5 * Math.abs(b);

/** Reads the channel files (and label) of a case as nnU-Net's NibabelIO does, checking they agree. */
export async function readRawCase(imageFiles: readonly string[], labelFile: string | undefined): Promise<RawCaseImages> {
  if (imageFiles.length === 0) throw new DatasetError('a case needs at least one image file');
  const images: Float32Array[] = [];
  let first: Awaited<ReturnType<typeof readNifti>> | undefined;
  for (const file of imageFiles) {
    if (!/\.nii(\.gz)?$/.test(file)) throw new DatasetError('only NIfTI images (.nii, .nii.gz) can be preprocessed', file);
    const img = await readNifti(file);
    if (first === undefined) first = img;
    else if (!img.shape.every((n, i) => n === first?.shape[i])) {
      throw new DatasetError(`shape [${img.shape.join(', ')}] differs from the first channel's [${first.shape.join(', ')}]`, file);
    } else if (!img.spacing.every((s, i) => close(s, first?.spacing[i] as number))) {
      throw new DatasetError(`spacing [${img.spacing.join(', ')}] differs from the first channel's [${first.spacing.join(', ')}]`, file);
    }
    const data = toFloat32(img.data);
    const n = data.length / img.channels;
    for (let c = 0; c < img.channels; c++) images.push(data.subarray(c * n, (c + 1) * n));
  }
  const ref = first as NonNullable<typeof first>;
  let seg: VoxelArray | undefined;
  if (labelFile !== undefined) {
    const label = await readNifti(labelFile);
    if (!label.shape.every((n, i) => n === ref.shape[i]) || label.channels !== 1) {
      throw new DatasetError(`label shape [${label.shape.join(', ')}] (${label.channels} channel(s)) does not match the image [${ref.shape.join(', ')}]`, labelFile);
    }
    seg = label.data;
  }
  const input: CaseInput = { nibabel_stuff: { original_affine: ref.affine }, spacing: ref.spacing, shape: ref.shape };
  return { images, seg, input };
}

export interface CaseTask {
  caseId: string;
  images: string[];
  label: string | undefined;
  plans: Plans;
  configuration: string;
  labels: DatasetJson['labels'];
  regionsClassOrder?: number[];
  /** `<preprocessed>/<dataset>/<data_identifier>` */
  outputFolder: string;
}

export interface CaseSummary {
  caseId: string;
  channels: number;
  shapeAfterCropping: number[];
  newShape: number[];
  spacing: number[];
}

/** Reads, preprocesses and writes one case; returns what the verbose log prints. */
export async function preprocessCaseFiles(task: CaseTask): Promise<CaseSummary> {
  const raw = await readRawCase(task.images, task.label);
  const labelManager = new LabelManager(task.labels, task.regionsClassOrder);
  let result: ReturnType<typeof preprocessCase>;
  try {
    result = preprocessCase(raw.images, raw.seg, raw.input, task.plans, task.configuration, labelManager);
  } catch (err) {
    // Shapes, spacings and values come from the files, so their problems are the dataset's.
    if (err instanceof RangeError) throw new DatasetError(`case ${task.caseId}: ${err.message}`, task.images[0]);
    throw err;
  }
  await writePreprocessedCase(task.outputFolder, task.caseId, result.data, result.channels, result.shape, result.seg, result.properties);
  return {
    caseId: task.caseId,
    channels: result.channels,
    shapeAfterCropping: result.properties.shape_after_cropping_and_before_resampling,
    newShape: result.shape,
    spacing: result.properties.spacing,
  };
}

/** The files of a preprocessed case in `folder`. */
export function preprocessedCaseFiles(folder: string, caseId: string): { data: string; seg: string; properties: string } {
  return { data: join(folder, `${caseId}.npy`), seg: join(folder, `${caseId}_seg.npy`), properties: join(folder, `${caseId}.json`) };
}

export async function writePreprocessedCase(
  folder: string,
  caseId: string,
  data: Float32Array,
  channels: number,
  shape: readonly number[],
  seg: Int16Array | undefined,
  properties: CaseProperties,
): Promise<void> {
  const files = preprocessedCaseFiles(folder, caseId);
  await writeNpy(files.data, { dtype: 'float32', shape: [channels, ...shape], data });
  if (seg !== undefined) await writeNpy(files.seg, { dtype: 'int16', shape: [1, ...shape], data: seg });
  // Properties last: a case counts as done once its .json exists.
  await writeFileAtomic(files.properties, JSON.stringify(properties));
}
