// NIfTI-1 single-file writer (.nii, or .nii.gz by the path's ending), our own rather than a library's.
// Like nnU-Net's NibabelIO.write_seg it stores the original affine, and pixdim follows the affine's
// column norms as nibabel derives it; the affine goes into both sform and qform with code 1 (scanner).
import { gzipSync } from 'node:zlib';
import { writeFileAtomic } from './atomic.js';
import { ImageFormatError } from './errors.js';
import { affineToQform } from './nifti-affine.js';
import {
  datatypeByName,
  datatypeOfArray,
  hostLittleEndian,
  swapBytesInPlace,
  type DatatypeInfo,
  type NiftiDatatype,
  type NiftiImage,
  type VoxelArray,
} from './nifti-types.js';

/** The caller chooses: uint8/uint16 for segmentations, float32 for images. */
export interface WriteOptions {
  datatype: NiftiDatatype;
}

export type NiftiImageToWrite = Pick<NiftiImage, 'data' | 'shape' | 'channels' | 'spacing' | 'affine'>;

/** vox_offset: the 348-byte header plus the 4-byte (all zero: no extensions) extension flag. */
const VOX_OFFSET = 352;
const NIFTI_XFORM_SCANNER_ANAT = 1;
const NIFTI_UNITS_MM = 2;
/** The largest size a NIfTI-1 dim (int16) can hold. */
const MAX_DIM = 32767;

/** Writes `image` atomically (temporary file + rename); gzip when `path` ends in .gz. */
export async function writeNifti(path: string, image: NiftiImageToWrite, options: WriteOptions): Promise<void> {
  await writeFileAtomic(path, encodeNifti(image, options, path.toLowerCase().endsWith('.gz'), path));
}

/**
 * The bytes of a NIfTI-1 file holding `image`. Values are converted to `options.datatype`; for
 * integer types they are rounded to nearest (ties to even, like numpy.rint, which nibabel uses),
 * clamped to the type's range, and NaN becomes 0. `spacing` only stands in for an all-zero affine
 * column: pixdim comes from the affine, so the two cannot disagree in the file.
 * `file` names the output in errors.
 */
export function encodeNifti(
  image: NiftiImageToWrite,
  options: WriteOptions,
  gzip: boolean,
  file = '<NIfTI output>',
): Buffer {
  const target = datatypeByName(options.datatype);
  const dims = checkedDims(image, file);
  const voxels = dims.reduce((n, d) => n * d, 1);
  if (image.data.length !== voxels) {
    throw new RangeError(`${file}: data has ${image.data.length} values, shape and channels need ${voxels}`);
  }
  checkAffine(image.affine, file);

  const bytes = new Uint8Array(new ArrayBuffer(VOX_OFFSET + voxels * target.bytes));
  writeHeader(new DataView(bytes.buffer), dims, target, image);
  const voxelBytes = bytes.subarray(VOX_OFFSET);
  convertInto(new target.array(bytes.buffer, VOX_OFFSET, voxels), image.data, target);
  if (!hostLittleEndian) swapBytesInPlace(voxelBytes, target.bytes);

  // Level 1 as nibabel uses by default: segmentations and CT compress nearly as well, much faster.
  return gzip ? gzipSync(bytes, { level: 1 }) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** NIfTI dims (dim1, dim2, dim3[, dim4]) from nnU-Net's shape [dim3, dim2, dim1] and channels. */
function checkedDims(image: NiftiImageToWrite, file: string): number[] {
  const dims = [image.shape[2], image.shape[1], image.shape[0]];
  if (image.channels !== 1) dims.push(image.channels);
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1) throw new RangeError(`${file}: shape ${image.shape} / channels ${image.channels} must be positive integers`);
    if (d > MAX_DIM) throw new ImageFormatError(file, `size ${d} exceeds NIfTI-1's limit of ${MAX_DIM} per axis`);
  }
  return dims;
}

function checkAffine(affine: number[][], file: string): void {
  const ok = affine.length === 4 && affine.every((row) => row.length === 4 && row.every(Number.isFinite));
  if (!ok) throw new RangeError(`${file}: affine must be a 4x4 matrix of finite numbers`);
}

function writeHeader(view: DataView, dims: number[], target: DatatypeInfo, image: NiftiImageToWrite): void {
  const le = true;
  const qform = affineToQform(image.affine, [image.spacing[2], image.spacing[1], image.spacing[0]]);
  view.setInt32(0, 348, le); // sizeof_hdr
  view.setUint8(38, 'r'.charCodeAt(0)); // "regular", as nibabel writes it
  view.setInt16(40, dims.length, le);
  for (let i = 1; i <= 7; i++) view.setInt16(40 + 2 * i, dims[i - 1] ?? 1, le);
  view.setInt16(70, target.code, le);
  view.setInt16(72, target.bytes * 8, le); // bitpix
  const pixdim = [qform.qfac, ...qform.pixdim, 1, 1, 1, 1];
  pixdim.forEach((p, i) => view.setFloat32(76 + 4 * i, p, le));
  view.setFloat32(108, VOX_OFFSET, le);
  view.setFloat32(112, 1, le); // scl_slope: values are stored as they are
  view.setFloat32(116, 0, le); // scl_inter
  view.setUint8(123, NIFTI_UNITS_MM); // xyzt_units: mm, no time unit
  view.setInt16(252, NIFTI_XFORM_SCANNER_ANAT, le); // qform_code
  view.setInt16(254, NIFTI_XFORM_SCANNER_ANAT, le); // sform_code
  view.setFloat32(256, qform.quaternB, le);
  view.setFloat32(260, qform.quaternC, le);
  view.setFloat32(264, qform.quaternD, le);
  qform.offset.forEach((o, i) => view.setFloat32(268 + 4 * i, o, le));
  // srow_x/y/z: the affine's first three rows, exactly (up to float32), shear included.
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 4; col++) view.setFloat32(280 + 4 * (row * 4 + col), image.affine[row][col], le);
  }
  [0x6e, 0x2b, 0x31, 0].forEach((c, i) => view.setUint8(344 + i, c)); // magic "n+1\0"
}

/** Copies `source` into `target`, rounding and clamping when `target` is an integer type. */
function convertInto(target: VoxelArray, source: VoxelArray, info: DatatypeInfo): void {
  const from = datatypeOfArray(source);
  const fits = from.integer && from.min >= info.min && from.max <= info.max;
  if (!info.integer || fits) {
    // Exact (or float rounding only): the typed-array copy converts element by element.
    target.set(source);
    return;
  }
  const { min, max } = info;
  for (let i = 0; i < source.length; i++) {
    const v = source[i];
    if (Number.isNaN(v)) {
      target[i] = 0;
    } else if (v <= min) {
      target[i] = min;
    } else if (v >= max) {
      target[i] = max;
    } else {
      target[i] = roundHalfEven(v);
    }
  }
}

function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +infinity
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
