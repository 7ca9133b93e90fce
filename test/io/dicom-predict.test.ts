// Predict with DICOM input through the real server process: a series cut from the example CT
// (96x96x20, see dicom-fixture.ts: the full 512x512 series takes minutes on two cores) goes up as a
// zip (INPUT_FORMAT_DICOM), the fixture nnU-Net model (a Hippocampus MRI model: this checks the
// plumbing and geometry, not the segmentation's quality) predicts, and a DICOM SEG comes back
// (PREDICT_OUTPUT_DICOM_SEG) in the series' study and frame of reference, referencing its slices.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { predictDicomOnServer } from '../../client/commands/predict-dicomweb.js';
import { readSegmentation } from '../../server/io/dicom/seg-read.js';
import { readDicomSeries } from '../../server/io/dicom/series.js';
import { FIXTURE_MODEL_NAME, installFixtureModel } from '../fixtures/nnunet-model.js';
import { tempDir } from '../helpers.js';
import { startServerProcess, type ServerProcess } from '../server/server-process.js';
import { CROPPED_UIDS, croppedExample, exampleFiles } from './dicom-fixture.js';

describe('Predict with a DICOM series in and a DICOM SEG out', function () {
  this.timeout(600_000);
  let server: ServerProcess;
  const tmp = tempDir('nnunet-dicom-predict-');
  const model = { dataset: '104', configuration: FIXTURE_MODEL_NAME.split('__')[2], trainer: FIXTURE_MODEL_NAME.split('__')[0], plans: FIXTURE_MODEL_NAME.split('__')[1] };

  before(async () => {
    const results = join(tmp.dir, 'nnUNet_results');
    mkdirSync(results, { recursive: true });
    installFixtureModel(results);
    server = await startServerProcess({ NNUNET_HOME: tmp.dir, nnUNet_results: results });
  });
  after(async () => {
    await server?.stop();
    tmp.cleanup();
  });

  it('segments the example series and answers a SEG that references it, on its grid', async () => {
    const files = await croppedExample();
    const t0 = performance.now();
    const result = await predictDicomOnServer({ address: server.address, model, folds: ['0'], mirroring: false, files });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`      DICOM predict round trip: ${seconds.toFixed(1)} s, SEG ${result.seg.length} bytes`);

    // Geometry of the prediction: the series' own (NIfTI i, j, k order).
    const series = await readDicomSeries(files);
    assert.deepEqual(result.geometry.shape.map(Number), [96, 96, 20]);
    series.affine.flat().forEach((v, i) => assert.ok(Math.abs(v - result.geometry.affine[i]) < 1e-3, `affine[${i}]: ${result.geometry.affine[i]} vs the series' ${v}`));

    const seg = readSegmentation('answer', result.seg, series.references.imagePositions);
    const ds = seg.dataset;
    assert.equal(ds.SOPInstanceUID, result.sopInstanceUID);
    assert.equal(ds.SeriesInstanceUID, result.seriesInstanceUID);
    assert.equal(ds.StudyInstanceUID, CROPPED_UIDS.study);
    assert.equal(ds.FrameOfReferenceUID, series.references.frameOfReferenceUID);
    assert.equal(ds.Rows, 96);
    assert.equal(ds.Columns, 96);
    assert.deepEqual(seg.segments.map((s) => s.label), ['Anterior', 'Posterior']);
    const referenced = (ds.ReferencedSeriesSequence as Record<string, unknown>[])[0];
    assert.equal(referenced.SeriesInstanceUID, CROPPED_UIDS.series);
    assert.deepEqual(
      (referenced.ReferencedInstanceSequence as Record<string, unknown>[]).map((r) => r.ReferencedSOPInstanceUID),
      series.references.sopInstanceUIDs,
    );
    const shared = (ds.SharedFunctionalGroupsSequence as Record<string, Record<string, unknown>[]>[])[0];
    assert.deepEqual((shared.PlaneOrientationSequence[0].ImageOrientationPatient as number[]).map(Number), [1, 0, 0, 0, 1, 0]);
    assert.deepEqual((shared.PixelMeasuresSequence[0].PixelSpacing as number[]).map(Number), [0.9765625, 0.9765625]);
    // Every frame sits on one of the series' slice positions (readSegmentation checks) and the
    // label map it rebuilds has the series' size.
    assert.equal(seg.labelMap.length, 96 * 96 * 20);
    assert.ok(seg.frames >= 2);
  });

  it('answers INVALID_ARGUMENT naming the zip entry that is not DICOM', async () => {
    const files = [...(await croppedExample()).slice(0, 3), { name: 'notes.txt', bytes: new TextEncoder().encode('not DICOM') }];
    // zipDicomFiles names the entries 00000.dcm, 00001.dcm, ... in order.
    await assert.rejects(predictDicomOnServer({ address: server.address, model, folds: ['0'], mirroring: false, files }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /^00003\.dcm: not a DICOM Part 10 file/);
      return true;
    });
  });

  it('refuses, before predicting, a DICOM series whose UIDs were blanked (a SEG could not reference it)', async () => {
    // The example as shipped: the anonymiser blanked Study and Series Instance UIDs.
    await assert.rejects(predictDicomOnServer({ address: server.address, model, folds: ['0'], mirroring: false, files: exampleFiles().slice(0, 3) }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /the source has no StudyInstanceUID/);
      return true;
    });
  });
});
