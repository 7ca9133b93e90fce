// Installing a model from a URL, against a loopback HTTP server serving nnU-Net's real model zip:
// the install succeeds and predicts like nnU-Net; a wrong SHA-256, a truncated transfer and a zip
// with a ../ entry fail clearly and leave nothing installed and no temporary file; a dropped
// connection resumes with a Range request; a server ignoring Range restarts; redirects are followed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { downloadFile } from '../../server/models/download.js';
import { installPretrained, type InstallPretrainedOptions } from '../../server/models/pretrained.js';
import { loadModelFolder, releaseModel } from '../../server/inference/model-folder.js';
import { predictCase } from '../../server/inference/predictor.js';
import { readNifti } from '../../server/io/nifti.js';
import { HIPPOCAMPUS, tempDir } from '../helpers.js';
import { FIXTURE_MODEL_NAME, FIXTURE_PREDICTIONS, MODEL_ZIP } from '../fixtures/nnunet-model.js';
import { startZipServer, type ZipServer } from './zip-server.js';

const ZIP = readFileSync(MODEL_ZIP);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ZIP_SHA = sha(ZIP);
const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

describe('model download and install by URL (loopback HTTP server)', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof tempDir>;
  let server: ZipServer;
  const evil = zipSync({ 'Dataset001_X/m__p__3d_fullres/plans.json': strToU8('{}'), '../escape.txt': strToU8('x') });

  before(async () => {
    server = await startZipServer({
      '/model.zip': { body: ZIP },
      '/flaky.zip': { body: ZIP, dropAfter: 1_000_000, dropTimes: 1 },
      '/no-range.zip': { body: ZIP, dropAfter: 700_000, dropTimes: 1, ranges: false },
      '/always-short.zip': { body: ZIP, dropAfter: 500_000, dropTimes: Infinity, ranges: false },
      '/evil.zip': { body: evil },
      '/moved': { body: ZIP, redirectTo: '/model.zip' },
      '/loop': { body: ZIP, redirectTo: '/loop' },
      '/gone.zip': { body: ZIP, status: 404 },
    });
  });
  after(async () => server?.close());
  beforeEach(() => {
    tmp = tempDir();
    server.requests.length = 0;
  });
  afterEach(() => tmp.cleanup());

  const options = (): InstallPretrainedOptions => {
    mkdirSync(join(tmp.dir, 'tmp'), { recursive: true });
    return { resultsRoot: join(tmp.dir, 'results'), tmpDir: join(tmp.dir, 'tmp'), catalogFile: join(tmp.dir, 'none.json'), maxBytes: 100 * 1024 * 1024, download: { backoffMs: 5, retries: 2 } };
  };
  const nothingLeft = (o: InstallPretrainedOptions) => {
    assert.deepEqual(list(o.resultsRoot), [], 'results root unchanged');
    assert.deepEqual(list(o.tmpDir), [], 'no temporary files');
  };

  it('installs the real nnU-Net v2 zip from a URL, and the model predicts like nnU-Net', async () => {
    const o = options();
    const stages = new Set<string>();
    let lastBytes = 0;
    const result = await installPretrained({ url: server.url('/model.zip'), sha256: ZIP_SHA }, { ...o, onProgress: (e) => (stages.add(e.stage), e.stage === 'downloading' && e.bytesDone > 0 && (lastBytes = e.bytesDone)) });
    assert.deepEqual(result.installed.map((m) => `${m.dataset}/${m.model}`), [`Dataset104_HippoDev/${FIXTURE_MODEL_NAME}`]);
    assert.equal(result.sha256, ZIP_SHA);
    assert.equal(lastBytes, ZIP.length);
    assert.deepEqual([...stages], ['downloading', 'installing']);
    assert.deepEqual(list(o.tmpDir), []);
    const model = await loadModelFolder(join(o.resultsRoot, 'Dataset104_HippoDev', FIXTURE_MODEL_NAME));
    try {
      const p = await predictCase(model, [join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_004_0000.nii.gz')], { mirroring: false });
      const ref = await readNifti(join(FIXTURE_PREDICTIONS, 'notta', 'hippocampus_004.nii.gz'));
      assert.deepEqual([...p.segmentation], [...ref.data]);
    } finally {
      await releaseModel(model);
    }
  });

  it('refuses a wrong SHA-256 after the download and installs nothing', async () => {
    const o = options();
    await assert.rejects(installPretrained({ url: server.url('/model.zip'), sha256: 'f'.repeat(64) }, o), new RegExp(`SHA-256 mismatch: expected f{64}, the ${ZIP.length} bytes downloaded hash to ${ZIP_SHA}; nothing was installed`));
    nothingLeft(o);
  });

  it('gives up on a transfer the server keeps cutting short (no Range support), installing nothing', async () => {
    const o = options();
    await assert.rejects(installPretrained({ url: server.url('/always-short.zip'), sha256: ZIP_SHA }, o), new RegExp(`the connection closed after \\d+ of ${ZIP.length} bytes; gave up after 3 attempt\\(s\\)`));
    assert.equal(server.requests.length, 3);
    nothingLeft(o);
  });

  it('refuses a zip with a ../ entry (hash correct) and installs nothing', async () => {
    const o = options();
    await assert.rejects(installPretrained({ url: server.url('/evil.zip'), sha256: sha(evil) }, o), /refusing unsafe zip entry.*\.\.\/escape\.txt/);
    assert.ok(!existsSync(join(tmp.dir, 'escape.txt')));
    assert.deepEqual(list(o.resultsRoot), []);
    assert.deepEqual(list(o.tmpDir), []);
  });

  it('resumes an interrupted transfer with a Range request, and the bytes match', async () => {
    const o = options();
    const events: string[] = [];
    const d = await downloadFile(server.url('/flaky.zip'), { tmpDir: o.tmpDir, sha256: ZIP_SHA, maxBytes: ZIP.length, backoffMs: 5, onEvent: (m) => events.push(m) });
    try {
      // the server cut the connection after sending 1 000 000 bytes; the client asks for the rest
      const ranges = server.requests.map((r) => r.range);
      assert.equal(ranges.length, 2);
      assert.equal(ranges[0], undefined);
      const from = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
      assert.ok(from > 0 && from <= 1_000_000, `Range ${ranges[1]}`);
      assert.equal(d.resumes, 1);
      assert.ok(readFileSync(d.file).equals(ZIP));
      assert.ok(events.some((e) => e === `resuming at byte ${from} of ${ZIP.length}`), events.join('\n'));
    } finally {
      d.cleanup();
    }
    assert.deepEqual(list(o.tmpDir), []);
  });

  it('restarts from zero when the server answers a Range request with 200', async () => {
    const o = options();
    const events: string[] = [];
    const d = await downloadFile(server.url('/no-range.zip'), { tmpDir: o.tmpDir, sha256: ZIP_SHA, maxBytes: ZIP.length, backoffMs: 5, onEvent: (m) => events.push(m) });
    try {
      assert.equal(server.requests.length, 2);
      assert.match(server.requests[1].range ?? '', /^bytes=\d+-$/);
      assert.equal(d.resumes, 0);
      assert.ok(readFileSync(d.file).equals(ZIP));
      assert.ok(events.some((e) => /ignored the Range request \(200\): restarting from byte 0/.test(e)), events.join('\n'));
    } finally {
      d.cleanup();
    }
  });

  it('follows redirects (bounded), refuses 404 and an over-limit Content-Length before writing', async () => {
    const o = options();
    const d = await downloadFile(server.url('/moved'), { tmpDir: o.tmpDir, sha256: ZIP_SHA, maxBytes: ZIP.length });
    d.cleanup();
    assert.deepEqual(server.requests.map((r) => r.path), ['/moved', '/model.zip']);
    await assert.rejects(downloadFile(server.url('/loop'), { tmpDir: o.tmpDir, sha256: ZIP_SHA, maxBytes: ZIP.length, maxRedirects: 3 }), /more than 3 redirects/);
    await assert.rejects(downloadFile(server.url('/gone.zip'), { tmpDir: o.tmpDir, sha256: ZIP_SHA, maxBytes: ZIP.length }), /answered HTTP 404/);
    server.requests.length = 0;
    await assert.rejects(downloadFile(server.url('/model.zip'), { tmpDir: o.tmpDir, sha256: ZIP_SHA, maxBytes: 1000 }), new RegExp(`announces ${ZIP.length} bytes, more than the limit of 1000`));
    await assert.rejects(downloadFile(server.url('/model.zip'), { tmpDir: o.tmpDir, sha256: ZIP_SHA, maxBytes: 2 * ZIP.length, expectedSize: ZIP.length + 1 }), /but the catalog says the model is \d+ bytes/);
    assert.deepEqual(list(o.tmpDir), []);
  });

  it('refuses a URL install without a SHA-256, and a non-http URL, before downloading', async () => {
    const o = options();
    await assert.rejects(installPretrained({ url: server.url('/model.zip') }, o), /installing from a URL needs the expected SHA-256/);
    await assert.rejects(installPretrained({ url: 'file:///etc/passwd', sha256: ZIP_SHA }, o), /only http and https URLs/);
    assert.deepEqual(server.requests, []);
  });
});
