// The PACS round trip against a real Orthanc with its DICOMweb plugin (Debian's orthanc and
// orthanc-dicomweb): Orthanc runs on a free loopback port with authentication on, the test stores a
// CT series in it, `nnunet predict_dicomweb` pulls the series (QIDO-RS, WADO-RS), predicts with the
// fixture model (through the real server process, and an embedded one), and stores the DICOM SEG back
// (STOW-RS); the SEG series is then found in Orthanc under the same study.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from '../../client/args.js';
import * as grpc from '@grpc/grpc-js';
import dcmjs from 'dcmjs';
import { predictDicomOnServer, predictDicomwebCommand } from '../../client/commands/predict-dicomweb.js';
import { DicomWebClient } from '../../server/dicomweb/client.js';
import { readSegmentation } from '../../server/io/dicom/seg-read.js';
import { readDicomSeries } from '../../server/io/dicom/series.js';
import { FIXTURE_MODEL_NAME, installFixtureModel } from '../fixtures/nnunet-model.js';
import { tempDir } from '../helpers.js';
import { CROPPED_UIDS, croppedExample, EXAMPLE_UIDS, exampleWithUids } from '../io/dicom-fixture.js';
import { startServerProcess, type ServerProcess } from '../server/server-process.js';

const ORTHANC = '/usr/sbin/Orthanc';
const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';
const USER = 'pacs-user';
const PASSWORD = 'pacs-password-0123';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

async function runCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const args = parseArgs(predictDicomwebCommand.spec, argv);
  assert.ok(args);
  const code = await predictDicomwebCommand.run(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('PACS round trip with Orthanc over DICOMweb', function () {
  this.timeout(300_000);
  const tmp = tempDir('nnunet-orthanc-');
  let orthanc: ChildProcess | undefined;
  let orthancLog = '';
  let base = '';
  let server: ServerProcess | undefined;
  const results = join(tmp.dir, 'nnUNet_results');
  const [trainer, plans, configuration] = FIXTURE_MODEL_NAME.split('__');

  before(async function () {
    if (!existsSync(ORTHANC) || !existsSync(DICOMWEB_PLUGIN)) {
      // The CI image installs both (Debian packages orthanc and orthanc-dicomweb).
      console.log(`      skipped: ${ORTHANC} or ${DICOMWEB_PLUGIN} is not installed`);
      this.skip();
    }
    const port = await freePort();
    const storage = join(tmp.dir, 'orthanc-db');
    mkdirSync(storage);
    const config = {
      Name: 'nnunet-test',
      StorageDirectory: storage,
      IndexDirectory: storage,
      HttpPort: port,
      HttpServerEnabled: true,
      DicomServerEnabled: false,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: true,
      RegisteredUsers: { [USER]: PASSWORD },
      Plugins: [DICOMWEB_PLUGIN],
      DicomWeb: { Enable: true, Root: '/dicom-web/' },
      OrthancExplorerEnabled: false,
      WebDavEnabled: false,
    };
    writeFileSync(join(tmp.dir, 'orthanc.json'), JSON.stringify(config));
    orthanc = spawn(ORTHANC, [join(tmp.dir, 'orthanc.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
    orthanc.stdout!.on('data', (d: Buffer) => (orthancLog += d.toString()));
    orthanc.stderr!.on('data', (d: Buffer) => (orthancLog += d.toString()));
    base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (orthanc.exitCode !== null) assert.fail(`Orthanc exited with ${orthanc.exitCode}:\n${orthancLog}`);
      const ok = await fetch(`${base}/system`, { headers: { authorization: basic } }).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) assert.fail(`Orthanc did not answer /system within 30 s:\n${orthancLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // Credentials are enforced.
    assert.equal((await fetch(`${base}/system`)).status, 401);
    for (const file of await croppedExample()) {
      const r = await fetch(`${base}/instances`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/dicom' }, body: file.bytes });
      assert.ok(r.ok, `storing ${file.name}: HTTP ${r.status} ${await r.text()}`);
    }
    mkdirSync(results, { recursive: true });
    installFixtureModel(results);
    // The server knows the PACS too, for Predict's DICOMweb input.
    server = await startServerProcess({ NNUNET_HOME: tmp.dir, nnUNet_results: results, NNUNET_DICOMWEB_URL: `${base}/dicom-web/`, NNUNET_DICOMWEB_USER: USER, NNUNET_DICOMWEB_PASSWORD: PASSWORD });
  });

  after(async () => {
    await server?.stop();
    if (orthanc && orthanc.exitCode === null) {
      orthanc.kill('SIGTERM');
      await new Promise((r) => orthanc!.once('exit', r));
    }
    tmp.cleanup();
  });

  const env = () => ({ NNUNET_DICOMWEB_URL: `${base}/dicom-web`, NNUNET_DICOMWEB_USER: USER, NNUNET_DICOMWEB_PASSWORD: PASSWORD, nnUNet_results: results });
  const modelArgs = ['-d', '104', '-c', configuration, '-tr', trainer, '-p', plans, '-f', '0', '--disable_tta'];

  it('pulls the series, predicts on the server, and stores a SEG that Orthanc files under the same study', async () => {
    const t0 = performance.now();
    const run = await runCommand(['--study', CROPPED_UIDS.study, ...modelArgs, '--server', server!.address], env());
    console.log(`      predict_dicomweb through the server: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(run.code, 0, run.stderr);
    const segUid = run.stdout.trim();
    assert.match(segUid, /^2\.25\.\d+$/);

    const pacs = new DicomWebClient({ url: `${base}/dicom-web`, user: USER, password: PASSWORD });
    const series = await pacs.searchSeries(CROPPED_UIDS.study);
    const segs = series.filter((s) => s.modality === 'SEG');
    assert.equal(segs.length, 1, JSON.stringify(series));
    assert.deepEqual(await pacs.searchInstances(CROPPED_UIDS.study, segs[0].seriesInstanceUID), [segUid]);

    // Read the stored SEG back from Orthanc: two segments named as the model's labels, on the source series' slices.
    const [stored] = await pacs.retrieveSeries(CROPPED_UIDS.study, segs[0].seriesInstanceUID);
    const source = await readDicomSeries(await pacs.retrieveSeries(CROPPED_UIDS.study, CROPPED_UIDS.series));
    const seg = readSegmentation('stored SEG', stored.bytes, source.references.imagePositions);
    assert.deepEqual(seg.segments.map((s) => s.label), ['Anterior', 'Posterior']);
    const referenced = (seg.dataset.ReferencedSeriesSequence as Record<string, unknown>[])[0];
    assert.equal(referenced.SeriesInstanceUID, CROPPED_UIDS.series);
    assert.equal(seg.dataset.PatientID, 'NNUNET-TEST-1');

    // Orthanc's own REST view agrees: the study now holds the CT and the SEG series.
    const studies = (await (await fetch(`${base}/tools/lookup`, { method: 'POST', headers: { authorization: basic }, body: CROPPED_UIDS.study })).json()) as { ID: string; Type: string }[];
    const study = studies.find((s) => s.Type === 'Study');
    assert.ok(study);
    const orthancSeries = (await (await fetch(`${base}/studies/${study.ID}/series`, { headers: { authorization: basic } })).json()) as { MainDicomTags: { Modality: string } }[];
    assert.deepEqual(orthancSeries.map((s) => s.MainDicomTags.Modality).sort(), ['CT', 'SEG']);
  });

  it('predicts through an embedded server over the local results folder when no server is given', async () => {
    const run = await runCommand(['--study', CROPPED_UIDS.study, '--series', CROPPED_UIDS.series, ...modelArgs], env());
    assert.equal(run.code, 0, run.stderr);
    const pacs = new DicomWebClient({ url: `${base}/dicom-web`, user: USER, password: PASSWORD });
    const segs = (await pacs.searchSeries(CROPPED_UIDS.study)).filter((s) => s.modality === 'SEG');
    assert.equal(segs.length, 2);
  });

  it('lets Predict pull the series from the PACS configured on the server and store the SEG back', async () => {
    const model = { dataset: '104', configuration, trainer, plans };
    const result = await predictDicomOnServer({ address: server!.address, model, folds: ['0'], mirroring: false, dicomweb: { study: CROPPED_UIDS.study, series: CROPPED_UIDS.series, storeSeg: true } });
    assert.equal(result.stored, true);
    const pacs = new DicomWebClient({ url: `${base}/dicom-web`, user: USER, password: PASSWORD });
    const segs = (await pacs.searchSeries(CROPPED_UIDS.study)).filter((s) => s.modality === 'SEG');
    assert.ok(segs.some((s) => s.seriesInstanceUID === result.seriesInstanceUID), 'the SEG the server stored is in the study');
    // Another host is refused: the server's credentials never go anywhere else.
    await assert.rejects(
      predictDicomOnServer({ address: server!.address, model, folds: ['0'], dicomweb: { url: 'http://example.org/dicom-web', study: CROPPED_UIDS.study, series: CROPPED_UIDS.series } }),
      (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED && /configured PACS/.test(err.details),
    );
    // A series the PACS does not have.
    await assert.rejects(
      predictDicomOnServer({ address: server!.address, model, folds: ['0'], dicomweb: { study: CROPPED_UIDS.study, series: '2.25.42' } }),
      (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND && /PACS/.test(err.details),
    );
  });

  it('retrieves a JPEG 2000 series as stored (no transcoding) and asks which series when a study has two', async () => {
    // The full example series, JPEG 2000 lossless, joins the study as a second CT series.
    for (const file of exampleWithUids()) {
      const r = await fetch(`${base}/instances`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/dicom' }, body: file.bytes });
      assert.ok(r.ok, `storing ${file.name}: HTTP ${r.status}`);
    }
    const pacs = new DicomWebClient({ url: `${base}/dicom-web`, user: USER, password: PASSWORD });
    const files = await pacs.retrieveSeries(EXAMPLE_UIDS.study, EXAMPLE_UIDS.series);
    assert.equal(files.length, 20);
    const bytes = files[0].bytes;
    const meta = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer).meta;
    assert.equal(meta['00020010'].Value?.[0], '1.2.840.10008.1.2.4.90', 'JPEG 2000 Lossless, as stored');
    const ours = await readDicomSeries(files);
    const direct = await readDicomSeries(exampleWithUids());
    assert.deepEqual(ours.shape, [20, 512, 512]);
    assert.ok(ours.data.every((v, i) => v === direct.data[i]), 'the same voxels as from the files');
    const run = await runCommand(['--study', EXAMPLE_UIDS.study, ...modelArgs], env());
    assert.equal(run.code, 1);
    assert.match(run.stderr, /has 2 image series; choose one with --series: /);
    assert.ok(run.stderr.includes(CROPPED_UIDS.series) && run.stderr.includes(EXAMPLE_UIDS.series), run.stderr);
  });

  it('says what is wrong with bad credentials and an unknown study', async () => {
    const wrong = await runCommand(['--study', CROPPED_UIDS.study, ...modelArgs], { ...env(), NNUNET_DICOMWEB_PASSWORD: 'nope' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /HTTP 401 .*check NNUNET_DICOMWEB_USER\/_PASSWORD or _TOKEN/);
    const unknown = await runCommand(['--study', '2.25.1', ...modelArgs], env());
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /study 2\.25\.1 has no CT, MR or PET series|HTTP 404/);
  });
});
