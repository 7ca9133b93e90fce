// DICOM SEG writing: a realistic many-label segmentation of the example CT series written as a
// SEG, read back and compared voxel by voxel with the label map, and checked by dciodvfy (the
// DICOM standard's validator from dicom3tools).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DicomError } from '../../server/io/dicom/errors.js';
import { readSegmentation } from '../../server/io/dicom/seg-read.js';
import { writeSegmentation, type SegLabel } from '../../server/io/dicom/seg.js';
import { readDicomSeries, type DicomSeriesVolume } from '../../server/io/dicom/series.js';
import { readNifti, type NiftiImage } from '../../server/io/nifti.js';
import { tempDir } from '../helpers.js';
import { EXAMPLE_SEG, EXAMPLE_UIDS, exampleWithUids } from './dicom-fixture.js';

/** dciodvfy's findings, split into errors and warnings; null when dciodvfy is not installed. */
function dciodvfy(file: string): { errors: string[]; warnings: string[] } | null {
  const r = spawnSync('dciodvfy', ['-new', file], { encoding: 'utf8' });
  if (r.error) return null;
  const lines = `${r.stdout}\n${r.stderr}`.split('\n');
  return { errors: lines.filter((l) => /^Error/.test(l)), warnings: lines.filter((l) => /^Warning/.test(l)) };
}

describe('DICOM SEG writing', function () {
  this.timeout(120_000);
  let series: DicomSeriesVolume;
  let seg: NiftiImage;
  let labels: SegLabel[];
  const tmp = tempDir('nnunet-seg-');

  before(async function () {
    series = await readDicomSeries(exampleWithUids());
    seg = await readNifti(EXAMPLE_SEG);
    const values = [...new Set(seg.data)].filter((v) => v > 0).sort((a, b) => a - b);
    labels = values.map((value) => ({ value, name: `structure ${value}` }));
  });
  after(() => tmp.cleanup());

  it('writes the 512x512x20 many-label segmentation so that reading it back gives the same label map', function () {
    assert.deepEqual(seg.shape, series.shape);
    assert.ok(labels.length > 20, `a many-label case (${labels.length} labels)`);
    const written = writeSegmentation({ labelMap: seg.data, shape: seg.shape, affine: seg.affine, series, labels, algorithmVersion: 'Dataset291_Test' });
    const file = join(tmp.dir, 'seg.dcm');
    writeFileSync(file, written.bytes);

    const back = readSegmentation('seg.dcm', written.bytes, series.references.imagePositions);
    assert.equal(back.segments.length, labels.length);
    assert.deepEqual(back.segments.map((s) => s.label), labels.map((l) => l.name));
    assert.ok(back.segments.every((s) => s.algorithmType === 'AUTOMATIC' && s.algorithmName === 'nnU-Net'));
    let differing = 0;
    for (let i = 0; i < seg.data.length; i++) {
      const expected = seg.data[i];
      const got = back.labelMap[i] === 0 ? 0 : labels[back.labelMap[i] - 1].value;
      if (got !== expected) differing++;
    }
    assert.equal(differing, 0, `${differing} voxels differ`);
    // Empty frames were left out: far fewer frames than segments x slices.
    assert.ok(written.frames < labels.length * 20, `${written.frames} frames`);

    const ds = back.dataset;
    assert.equal(ds.StudyInstanceUID, EXAMPLE_UIDS.study);
    assert.equal(ds.FrameOfReferenceUID, series.references.frameOfReferenceUID);
    assert.equal(ds.PatientID, 'NNUNET-TEST-1');
    assert.notEqual(ds.SeriesInstanceUID, EXAMPLE_UIDS.series);
    assert.match(String(ds.SeriesInstanceUID), /^2\.25\.\d+$/);
    const refSeries = (ds.ReferencedSeriesSequence as Record<string, unknown>[])[0];
    assert.equal(refSeries.SeriesInstanceUID, EXAMPLE_UIDS.series);
    assert.deepEqual(
      (refSeries.ReferencedInstanceSequence as Record<string, unknown>[]).map((r) => r.ReferencedSOPInstanceUID),
      series.references.sopInstanceUIDs,
    );

    const report = dciodvfy(file);
    if (report === null) this.skip(); // dicom3tools is a Debian package the CI image installs
    assert.deepEqual(report.errors, [], `dciodvfy errors:\n${report.errors.join('\n')}\nwarnings:\n${report.warnings.join('\n')}`);
  });

  it('writes every frame when asked, each frame referencing its source slice', function () {
    const few = labels.slice(0, 3);
    const written = writeSegmentation({ labelMap: seg.data, shape: seg.shape, affine: seg.affine, series, labels: few, algorithmVersion: 'm', skipEmptyFrames: false });
    assert.equal(written.frames, 3 * 20);
    const back = readSegmentation('seg.dcm', written.bytes, series.references.imagePositions);
    const groups = back.dataset.PerFrameFunctionalGroupsSequence as Record<string, Record<string, Record<string, unknown>[]>[]>[];
    // Frame 1 of segment 1 is the lowest slice; its source image is that slice's instance.
    const source = groups[0].DerivationImageSequence[0].SourceImageSequence as unknown as Record<string, unknown>[];
    assert.equal(source[0].ReferencedSOPInstanceUID, series.references.sopInstanceUIDs[0]);
    for (let i = 0; i < seg.data.length; i++) {
      const expected = few.findIndex((l) => l.value === seg.data[i]) + 1;
      if (back.labelMap[i] !== expected) assert.fail(`voxel ${i}: ${back.labelMap[i]} vs ${expected}`);
    }
  });

  it('refuses a label map that is not on the series grid', function () {
    const shifted = seg.affine.map((row) => [...row]);
    shifted[2][3] += 2;
    assert.throws(
      () => writeSegmentation({ labelMap: seg.data, shape: seg.shape, affine: shifted, series, labels, algorithmVersion: 'm' }),
      (err: unknown) => err instanceof DicomError && /affine differs from the source series/.test(err.message),
    );
  });
});
