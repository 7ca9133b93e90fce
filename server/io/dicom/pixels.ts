// Pixel data of one single-frame DICOM image as stored integer values: native (uncompressed)
// little-endian data and JPEG 2000 (lossless or lossy) through OpenJPEG's WebAssembly build. Other
// encapsulated transfer syntaxes (JPEG baseline/lossless, JPEG-LS, RLE) are refused by name, so a
// user knows to transcode (e.g. `dcmconv +te` or Orthanc's transcoding) before sending.
import openjpegFactory, { type OpenJpegModule } from '@cornerstonejs/codec-openjpeg/wasmjs';
import { DicomError } from './errors.js';

export const TRANSFER_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian (retired)',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

const NATIVE = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1.99']);
const JPEG2000 = new Set(['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91']);

/** What the image pixel module says about the stored samples. */
export interface PixelFormat {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  signed: boolean;
}

let openjpeg: Promise<OpenJpegModule> | undefined;

/** The OpenJPEG module, loaded once (its messages to stdout are dropped: they are progress noise). */
function loadOpenJpeg(): Promise<OpenJpegModule> {
  openjpeg ??= openjpegFactory({ print: () => {}, printErr: () => {} });
  return openjpeg;
}

/**
 * The frame's stored values (before rescale), one per pixel in DICOM row-major order, in an
 * Int32Array (wide enough for 16-bit signed and unsigned alike).
 * `pixelData` is the PixelData value as dcmjs reads it: one ArrayBuffer for native data, the
 * fragments for encapsulated data.
 */
export async function storedValues(file: string, transferSyntax: string, pixelData: unknown, format: PixelFormat): Promise<Int32Array> {
  const pixels = format.rows * format.columns;
  const buffers = Array.isArray(pixelData) ? pixelData.filter((b): b is ArrayBuffer => b instanceof ArrayBuffer) : [];
  if (buffers.length === 0) throw new DicomError(file, 'has no PixelData');
  if (NATIVE.has(transferSyntax)) {
    const bytes = new Uint8Array(buffers[0]);
    const needed = pixels * (format.bitsAllocated / 8);
    if (bytes.length < needed) throw new DicomError(file, `truncated: PixelData has ${bytes.length} bytes, ${format.rows}x${format.columns} pixels of ${format.bitsAllocated} bits need ${needed}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, needed);
    const out = new Int32Array(pixels);
    if (format.bitsAllocated === 8) for (let p = 0; p < pixels; p++) out[p] = view.getUint8(p);
    else for (let p = 0; p < pixels; p++) out[p] = view.getUint16(2 * p, true);
    return fromContainer(out, format);
  }
  if (JPEG2000.has(transferSyntax)) return decodeJpeg2000(file, buffers, format);
  const name = TRANSFER_SYNTAXES[transferSyntax] ?? 'unknown';
  throw new DicomError(
    file,
    `transfer syntax ${transferSyntax} (${name}) is not supported; supported: Implicit/Explicit VR Little Endian, Deflated, JPEG 2000 (transcode the series first, e.g. with dcmconv or Orthanc)`,
  );
}

/** Keeps the BitsStored low bits of each container value and sign-extends them for signed data. */
function fromContainer(values: Int32Array, format: PixelFormat): Int32Array {
  const bits = format.bitsStored;
  if (bits >= 32) return values;
  const mask = bits >= 31 ? 0x7fffffff : (1 << bits) - 1;
  const signBit = 1 << (bits - 1);
  for (let p = 0; p < values.length; p++) {
    const v = values[p] & mask;
    values[p] = format.signed && v & signBit ? v - (mask + 1) : v;
  }
  return values;
}

async function decodeJpeg2000(file: string, fragments: ArrayBuffer[], format: PixelFormat): Promise<Int32Array> {
  const lib = await loadOpenJpeg();
  // A single-frame image may still be split into several fragments: their concatenation is the codestream.
  const length = fragments.reduce((n, f) => n + f.byteLength, 0);
  const decoder = new lib.J2KDecoder();
  try {
    const target = decoder.getEncodedBuffer(length);
    let at = 0;
    for (const f of fragments) {
      target.set(new Uint8Array(f), at);
      at += f.byteLength;
    }
    try {
      decoder.decode();
    } catch (err) {
      throw new DicomError(file, `JPEG 2000 pixel data cannot be decoded (truncated or corrupt): ${String(err)}`);
    }
    const info = decoder.getFrameInfo();
    if (info.width !== format.columns || info.height !== format.rows || info.componentCount !== 1) {
      throw new DicomError(file, `JPEG 2000 codestream is ${info.width}x${info.height}x${info.componentCount}, the header says ${format.columns}x${format.rows}x1`);
    }
    const decoded = decoder.getDecodedBuffer();
    const pixels = format.rows * format.columns;
    const out = new Int32Array(pixels);
    const view = new DataView(decoded.buffer, decoded.byteOffset, decoded.byteLength);
    const wide = info.bitsPerSample > 8;
    if (decoded.byteLength < pixels * (wide ? 2 : 1)) throw new DicomError(file, 'JPEG 2000 codestream decodes to fewer pixels than the header declares');
    for (let p = 0; p < pixels; p++) {
      if (wide) out[p] = info.isSigned ? view.getInt16(2 * p, true) : view.getUint16(2 * p, true);
      else out[p] = info.isSigned ? view.getInt8(p) : view.getUint8(p);
    }
    // The codestream's own signedness decides how the decoded samples read; PixelRepresentation
    // then applies to unsigned samples as for native data (some encoders write signed data as
    // unsigned codestreams).
    return info.isSigned ? out : fromContainer(out, format);
  } finally {
    decoder.delete();
  }
}
