// DICOM series reading: the real JPEG 2000 CT example against dcm2niix's NIfTI of it (voxels and
// affine in the same conventions), and refusals of bad series, each naming the instance.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { DicomError } from '../../server/io/dicom/errors.js';
import { readDicomSeries, type DicomFile } from '../../server/io/dicom/series.js';
import { readNifti } from '../../server/io/nifti.js';
import { tempDir } from '../helpers.js';
import { EXAMPLE_SERIES, EXAMPLE_UIDS, exampleFiles, exampleWithUids, rewrite } from './dicom-fixture.js';

/** A small single-frame CT slice written from scratch (Explicit VR Little Endian, native pixels). */
function syntheticSlice(o: { z: number; values: number[]; bitsAllocated: 8 | 16; bitsStored?: number; signed: boolean; slope?: number; intercept?: number; photometric?: string }): DicomFile {
  const rows = 2;
  const columns = 3;
  const sop = `2.25.777${Math.round(o.z * 10) + 5000}`;
  const Typed = o.bitsAllocated === 8 ? (o.signed ? Int8Array : Uint8Array) : o.signed ? Int16Array : Uint16Array;
  const pixels = new Typed(o.values);
  const dataset = {
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
    SOPInstanceUID: sop,
    StudyInstanceUID: '2.25.7771',
    SeriesInstanceUID: '2.25.7772',
    FrameOfReferenceUID: '2.25.7773',
    Modality: 'CT',
    ImagePositionPatient: [10, 20, o.z],
    ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
    PixelSpacing: [0.5, 0.25],
    Rows: rows,
    Columns: columns,
    SamplesPerPixel: 1,
    PhotometricInterpretation: o.photometric ?? 'MONOCHROME2',
    BitsAllocated: o.bitsAllocated,
    BitsStored: o.bitsStored ?? o.bitsAllocated,
    HighBit: (o.bitsStored ?? o.bitsAllocated) - 1,
    PixelRepresentation: o.signed ? 1 : 0,
    RescaleSlope: o.slope ?? 1,
    RescaleIntercept: o.intercept ?? 0,
    PixelData: [pixels.buffer],
    _vrMap: { PixelData: o.bitsAllocated === 8 ? 'OB' : 'OW' },
  };
  const meta = dcmjs.data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: sop,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.777',
  });
  const dict = new dcmjs.data.DicomDict(meta);
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return { name: `slice-${o.z}.dcm`, bytes: new Uint8Array(dict.write()) };
}

async function rejects(files: DicomFile[], pattern: RegExp): Promise<DicomError> {
  let caught: unknown;
  await readDicomSeries(files).catch((err: unknown) => (caught = err));
  assert.ok(caught instanceof DicomError, `expected a DicomError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

describe('DICOM series reading', function () {
  this.timeout(120_000);

  it('reads the example CT series voxel for voxel as dcm2niix does, with its affine within 1e-3 mm', async function () {
    const tmp = tempDir('nnunet-dcm2niix-');
    try {
      const r = spawnSync('dcm2niix', ['-z', 'y', '-b', 'n', '-f', 'series', '-o', tmp.dir, EXAMPLE_SERIES], { encoding: 'utf8' });
      if (r.error) this.skip(); // dcm2niix is a Debian package the CI image installs
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const outputs = readdirSync(tmp.dir).filter((f) => f.endsWith('.nii.gz'));
      assert.deepEqual(outputs, ['series.nii.gz']);
      const reference = await readNifti(join(tmp.dir, outputs[0]));
      const ours = await readDicomSeries(exampleFiles());

      assert.deepEqual(ours.shape, reference.shape);
      assert.deepEqual(ours.shape, [20, 512, 512]);
      for (let a = 0; a < 3; a++) assert.ok(Math.abs(ours.spacing[a] - reference.spacing[a]) < 1e-4, `spacing ${ours.spacing} vs ${reference.spacing}`);
      for (let r4 = 0; r4 < 4; r4++) {
        for (let c = 0; c < 4; c++) assert.ok(Math.abs(ours.affine[r4][c] - reference.affine[r4][c]) < 1e-3, `affine[${r4}][${c}]: ${ours.affine[r4][c]} vs ${reference.affine[r4][c]}`);
      }
      assert.equal(ours.data.length, reference.data.length);
      assert.ok(ours.data instanceof Int16Array, 'CT in HU fits int16');
      let differing = 0;
      for (let i = 0; i < ours.data.length; i++) if (ours.data[i] !== reference.data[i]) differing++;
      assert.equal(differing, 0, `${differing} voxels differ from dcm2niix`);
      // HU: air is about -1000 and the rescale intercept is -1024.
      assert.equal(ours.data.subarray(0, 512 * 512).reduce((m, v) => Math.min(m, v), Infinity), -1024);

      assert.equal(ours.references.sopInstanceUIDs.length, 20);
      // Ascending along the normal (0, 0, 1): the most inferior slice (z = -804.5) first.
      assert.equal(ours.references.imagePositions[0][2], -804.5);
      assert.equal(ours.references.imagePositions[19][2], -766.5);
      assert.equal(ours.references.sopInstanceUIDs[0], '1.3.12.2.1107.5.1.4.60064.30000022120808113428000016592');
      assert.equal(ours.references.spacingBetweenSlices, 2);
      assert.equal(ours.references.sliceThickness, 3, 'SliceThickness (3 mm) is kept for the SEG but not used as spacing');
      assert.equal(ours.references.frameOfReferenceUID, '1.3.12.2.1107.5.1.4.60064.30000022120807274275100000041');
    } finally {
      tmp.cleanup();
    }
  });

  it('orders slices by position, not by file order, and keeps the UIDs of a series that has them', async function () {
    const files = exampleWithUids().reverse();
    const v = await readDicomSeries(files);
    assert.equal(v.references.studyInstanceUID, EXAMPLE_UIDS.study);
    assert.equal(v.references.seriesInstanceUID, EXAMPLE_UIDS.series);
    assert.deepEqual(
      v.references.imagePositions.map((p) => p[2]),
      Array.from({ length: 20 }, (_, k) => -804.5 + 2 * k),
    );
    assert.equal(v.references.patientStudy.PatientID, 'NNUNET-TEST-1');
  });

  it('refuses a series with a missing slice, naming the instances around the gap', async function () {
    const files = exampleFiles();
    // Files are named by SOP Instance UID ...573 (z = -766.5) to ...592 (z = -804.5): drop z = -786.5.
    const dropped = files.filter((f) => !f.name.endsWith('16583'));
    assert.equal(dropped.length, 19);
    const err = await rejects(dropped, /missing slice: 1 slice\(s\) missing between/);
    assert.match(err.message, /16584 \(position -788\.500/);
    assert.match(err.message, /16582 \(position -784\.500/);
  });

  it('refuses two series mixed, listing both, and reads the one selected', async function () {
    const files = exampleFiles();
    const other = '2.25.1234567890';
    files[3] = rewrite(files[3], { '0020000E': { vr: 'UI', Value: [other] } }, 'other-series.dcm');
    const err = await rejects(files, /the files hold 2 series; select one by SeriesInstanceUID/);
    assert.match(err.message, /2\.25\.1234567890: 1 instance\(s\), e\.g\. other-series\.dcm/);
    assert.match(err.message, /\(no SeriesInstanceUID\): 19 instance\(s\)/);
    const one = await readDicomSeries([files[3]], { seriesInstanceUID: other });
    assert.deepEqual(one.shape, [1, 512, 512]);
  });

  it('refuses a non-image SOP class, naming the file and the class', async function () {
    const files = exampleFiles();
    files[5] = rewrite(files[5], { '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.88.33'] } }, 'report.dcm');
    await rejects(files, /^report\.dcm: SOP Class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\.33 \(Comprehensive SR Storage\) is not an image series/);
  });

  it('refuses an enhanced multi-frame image by its SOP class', async function () {
    const files = exampleFiles();
    files[0] = rewrite(files[0], { '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2.1'] } }, 'enhanced.dcm');
    await rejects(files, /^enhanced\.dcm: SOP Class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2\.1 \(Enhanced CT Image Storage\) is an enhanced multi-frame image/);
  });

  it('refuses a truncated file and a file that is not DICOM, naming them', async function () {
    const files = exampleFiles();
    const cut = { name: files[7].name, bytes: files[7].bytes.subarray(0, files[7].bytes.length >> 1) };
    await rejects([...files.slice(0, 7), cut, ...files.slice(8)], new RegExp(`^${files[7].name}: truncated`));
    const header = { name: 'header-only.dcm', bytes: files[7].bytes.subarray(0, 1000) };
    await rejects([header], /^header-only\.dcm: truncated or corrupt DICOM file/);
    await rejects([{ name: 'notes.txt', bytes: new TextEncoder().encode('not a DICOM file') }], /^notes\.txt: not a DICOM Part 10 file/);
  });

  it('reads native 8- and 16-bit, signed and unsigned pixels with rescale, and masks to BitsStored', async function () {
    // Signed 16-bit with an integer rescale: int16 HU, rows flipped (DICOM row 0 is array row 1).
    const signed = await readDicomSeries([
      syntheticSlice({ z: 0, values: [-1000, -1, 0, 1, 500, 32767], bitsAllocated: 16, signed: true, intercept: 0 }),
      syntheticSlice({ z: 1.5, values: [1, 2, 3, 4, 5, 6], bitsAllocated: 16, signed: true, intercept: -10 }),
    ]);
    assert.ok(signed.data instanceof Float32Array, 'with intercept -10, the signed 16-bit range no longer fits int16');
    assert.deepEqual([...signed.data], [1, 500, 32767, -1000, -1, 0, -6, -5, -4, -9, -8, -7]);
    assert.deepEqual(signed.shape, [2, 2, 3]);
    assert.deepEqual(signed.spacing, [1.5, 0.5, 0.25]);
    // i: -0.25 along x (LPS -> RAS), j: +0.5 along y (rows flipped), origin at the last row of the first slice.
    assert.deepEqual(signed.affine, [
      [-0.25, 0, 0, -10],
      [0, 0.5, 0, -20.5],
      [0, 0, 1.5, 0],
      [0, 0, 0, 1],
    ]);
    // 12 bits stored in 16 with junk in the top bits: masked away; a float slope gives float32.
    const masked = await readDicomSeries([syntheticSlice({ z: 0, values: [0xf000 | 100, 4095, 0, 1, 2, 3], bitsAllocated: 16, bitsStored: 12, signed: false, slope: 0.5, intercept: -1024 })]);
    assert.ok(masked.data instanceof Float32Array);
    assert.deepEqual([...masked.data], [-1023.5, -1023, -1022.5, -974, 1023.5, -1024]);
    // 8-bit signed and unsigned, MONOCHROME1 read as stored values (only the display inverts).
    const u8 = await readDicomSeries([syntheticSlice({ z: 0, values: [0, 255, 7, 8, 9, 10], bitsAllocated: 8, signed: false, photometric: 'MONOCHROME1' })]);
    assert.ok(u8.data instanceof Int16Array);
    assert.deepEqual([...u8.data], [8, 9, 10, 0, 255, 7]);
    const s8 = await readDicomSeries([syntheticSlice({ z: 0, values: [-128, 127, -1, 0, 1, 2], bitsAllocated: 8, signed: true })]);
    assert.deepEqual([...s8.data], [0, 1, 2, -128, 127, -1]);
    await rejects([syntheticSlice({ z: 0, values: [0, 0, 0, 0, 0, 0], bitsAllocated: 8, signed: false, photometric: 'PALETTE COLOR' })], /PhotometricInterpretation PALETTE COLOR is not supported/);
  });

  it('refuses mixed orientations, sizes and pixel spacings, and uneven spacing', async function () {
    const files = exampleFiles();
    const tilted = [...files];
    tilted[2] = rewrite(files[2], { '00200037': { vr: 'DS', Value: [1, 0, 0, 0, 0.9, 0.43589] } }, 'tilted.dcm');
    await rejects(tilted, /^tilted\.dcm: mixed orientation/);
    const spaced = [...files];
    spaced[4] = rewrite(files[4], { '00280030': { vr: 'DS', Value: [0.5, 0.5] } }, 'fine.dcm');
    await rejects(spaced, /^fine\.dcm: mixed PixelSpacing/);
    const moved = [...files];
    const p = [-249.51171875, -437.51171875, -774.0]; // ...577 sits at -774.5
    moved[4] = rewrite(files[4], { '00200032': { vr: 'DS', Value: p } }, 'moved.dcm');
    await rejects(moved, /uneven slice spacing: gap of 2\.500 mm between .*moved\.dcm/);
  });
});
