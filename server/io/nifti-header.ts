// Reads and validates a NIfTI-1/NIfTI-2 header (parsed by nifti-reader-js) into what the reader
// needs: datatype, nnU-Net-ordered shape and spacing (as NibabelIO reports them), the best affine
// (sform, else qform, else pixdim — nibabel's order), scaling and where the voxels lie.
import { constants as bufferConstants } from 'node:buffer';
import { isNIFTI, isNIFTI1, readHeader, type NIFTI1, type NIFTI2 } from 'nifti-reader-js';
import { qformToAffine } from './nifti-affine.js';
import { describeUnsupportedCode, datatypeByCode, type DatatypeInfo } from './nifti-types.js';
import { ImageFormatError, VolumeTooLargeError } from './errors.js';

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI2_HEADER_BYTES = 540;

export interface NiftiHeaderInfo {
  version: 1 | 2;
  littleEndian: boolean;
  datatype: DatatypeInfo;
  shape: [number, number, number];
  channels: number;
  spacing: [number, number, number];
  affine: number[][];
  /** Byte offset of the first voxel. */
  voxOffset: number;
  /** Byte offset just past the last voxel. */
  end: number;
  /** Voxels including channels. */
  voxels: number;
  /** Linear scaling to apply, or undefined when the stored values are the values. */
  scaling?: { slope: number; inter: number };
}

/**
 * Parses the header at the start of `bytes` (uncompressed). Refuses, with an ImageFormatError naming
 * `file`, anything the reader cannot turn into a volume, and volumes over `maxVoxels` (counted from
 * the header dims alone, so nothing large has been allocated yet).
 */
export function parseNiftiHeader(bytes: Uint8Array, file: string, maxVoxels: number): NiftiHeaderInfo {
  const fail = (reason: string): never => {
    throw new ImageFormatError(file, reason);
  };
  if (bytes.length < NIFTI1_HEADER_BYTES) fail(`too short for a NIfTI header (${bytes.length} bytes)`);
  // An exact copy of the header bytes: the library reads extensions past the header when it gets
  // more, and we need none of them.
  const prefix = bytes.slice(0, Math.min(bytes.length, NIFTI2_HEADER_BYTES)).buffer;
  if (!isNIFTI(prefix)) {
    if (isNIFTI(prefix, true)) fail('is the header of a .hdr/.img pair; only single-file .nii/.nii.gz is supported');
    fail("no NIfTI magic ('n+1' at byte 344 or 'n+2' at byte 4)");
  }
  const version = isNIFTI1(prefix) ? 1 : 2;
  const headerBytes = version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  if (prefix.byteLength < headerBytes) fail(`truncated NIfTI-2 header (${prefix.byteLength} of 540 bytes)`);
  let header: NIFTI1 | NIFTI2;
  try {
    header = readHeader(prefix.slice(0, headerBytes));
  } catch (err) {
    return fail(`unreadable NIfTI-${version} header (${(err as Error).message})`);
  }

  // NIfTI-2 sizes are int64. The library's int64 reader sign-extends negatives twice and swaps the
  // words of big-endian values, so we read dim[] and vox_offset ourselves.
  const view = new DataView(prefix);
  const int64 = (offset: number): number => Number(view.getBigInt64(offset, header.littleEndian));
  const dim = version === 1 ? header.dims : Array.from({ length: 8 }, (_, i) => int64(16 + 8 * i));
  const rawVoxOffset = version === 1 ? header.vox_offset : int64(168);

  const datatype = datatypeByCode(header.datatypeCode) ?? fail(describeUnsupportedCode(header.datatypeCode));
  const dims = checkedDims(dim, fail);
  const voxels = dims.reduce((n, d) => n * d, 1);
  if (!Number.isSafeInteger(voxels) || !Number.isSafeInteger(voxels * datatype.bytes)) {
    fail(`dimensions ${dims.join('x')} overflow (more than 2^53 voxels)`);
  }
  if (voxels > maxVoxels) throw new VolumeTooLargeError(file, voxels, maxVoxels);

  const voxOffset = Math.floor(rawVoxOffset);
  if (!Number.isSafeInteger(voxOffset) || voxOffset < headerBytes) {
    fail(`vox_offset ${rawVoxOffset} lies inside the ${headerBytes}-byte header`);
  }

  const end = voxOffset + voxels * datatype.bytes;
  if (end > bufferConstants.MAX_LENGTH) {
    fail(`needs ${end} bytes in memory, more than the ${bufferConstants.MAX_LENGTH} one Node.js buffer can hold`);
  }

  return {
    version,
    littleEndian: header.littleEndian,
    datatype,
    shape: [dims[2] ?? 1, dims[1] ?? 1, dims[0]],
    channels: dims[3] ?? 1,
    spacing: spacingOf(header.pixDims, Math.min(dims.length, 3), fail),
    affine: bestAffine(header, view, version, fail),
    voxOffset,
    end,
    voxels,
    scaling: scalingOf(header.scl_slope, header.scl_inter, fail),
  };
}

/** dim[1..dim[0]], each a positive integer; dim5 and up must be 1 (channels live in dim4 only). */
function checkedDims(dim: number[], fail: (reason: string) => never): number[] {
  const rank = dim[0];
  if (!Number.isInteger(rank) || rank < 1 || rank > 7) fail(`dim[0] = ${rank} is outside 1..7`);
  const dims = dim.slice(1, rank + 1);
  dims.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 1) fail(`dim[${i + 1}] = ${d} is not a positive size`);
  });
  dims.slice(4).forEach((d, i) => {
    if (d > 1) fail(`dim[${i + 5}] = ${d}: only 3D volumes with channels in dim[4] are supported`);
  });
  return dims.slice(0, 4);
}

/**
 * [pixdim3, pixdim2, pixdim1] as absolute values (nibabel's zooms, reversed like NibabelIO). Axes a
 * 2D or 1D file lacks get 999 x the largest spacing, nnU-Net's pseudo-3D convention for 2D images.
 */
function spacingOf(pixdim: number[], spatialRank: number, fail: (reason: string) => never): [number, number, number] {
  const present = pixdim.slice(1, spatialRank + 1).map((p, i) => {
    if (!Number.isFinite(p)) fail(`pixdim[${i + 1}] = ${p} is not a finite voxel size`);
    return Math.abs(p);
  });
  const missing = 999 * Math.max(...present);
  const [x, y = missing, z = missing] = present;
  return [z, y, x];
}

/** nibabel's get_best_affine: sform when sform_code > 0, else qform when qform_code > 0, else pixdim. */
function bestAffine(
  header: NIFTI1 | NIFTI2,
  view: DataView,
  version: 1 | 2,
  fail: (reason: string) => never,
): number[][] {
  // The library already picks an affine, but prefers the qform whenever qform_code > sform_code;
  // nibabel (and so nnU-Net) always takes a set sform first, so we read srow_x/y/z ourselves.
  let affine: number[][];
  let source: string;
  if (header.sform_code > 0) {
    source = 'sform';
    affine = [0, 1, 2].map((row) =>
      [0, 1, 2, 3].map((col) =>
        version === 1
          ? view.getFloat32(280 + 4 * (row * 4 + col), header.littleEndian)
          : view.getFloat64(400 + 8 * (row * 4 + col), header.littleEndian),
      ),
    );
    affine.push([0, 0, 0, 1]);
  } else if (header.qform_code > 0) {
    source = 'qform';
    affine = qformToAffine({
      quaternB: header.quatern_b,
      quaternC: header.quatern_c,
      quaternD: header.quatern_d,
      offset: [header.qoffset_x, header.qoffset_y, header.qoffset_z],
      // nifti1_io counts a non-positive size as 1; a negative one is more likely a sign slip, so
      // we use its magnitude, which keeps the affine consistent with the reported spacing.
      pixdim: [Math.abs(header.pixDims[1]), Math.abs(header.pixDims[2]), Math.abs(header.pixDims[3])],
      qfac: header.pixDims[0] < 0 ? -1 : 1,
    });
  } else {
    // NIfTI "method 1". nibabel would fall back to an Analyze-style centred affine here; the NIfTI
    // standard's plain scaling is what a reader of the file expects.
    source = 'pixdim';
    const size = (p: number): number => (Number.isFinite(p) && p !== 0 ? Math.abs(p) : 1);
    affine = [
      [size(header.pixDims[1]), 0, 0, 0],
      [0, size(header.pixDims[2]), 0, 0],
      [0, 0, size(header.pixDims[3]), 0],
      [0, 0, 0, 1],
    ];
  }
  if (!affine.every((row) => row.every(Number.isFinite))) fail(`the ${source} affine has non-finite entries`);
  return affine;
}

/** NIfTI: slope 0 (or not finite) means "no scaling"; slope 1 with intercept 0 changes nothing either. */
function scalingOf(slope: number, inter: number, fail: (reason: string) => never): NiftiHeaderInfo['scaling'] {
  if (!Number.isFinite(slope) || slope === 0) return undefined;
  if (!Number.isFinite(inter)) fail(`scl_slope = ${slope} is valid but scl_inter = ${inter} is not`);
  if (slope === 1 && inter === 0) return undefined;
  return { slope, inter };
}
