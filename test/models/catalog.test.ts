// The pretrained catalog: the shipped models/catalog.json is valid and says which entries can run;
// a broken catalog fails with an error naming the entry and the field; installs are refused
// before any download when the entry is a v1 zip or no hash is known; a bundled entry (a model
// folder shipped with the package, as the demo model is) installs with no URL or hash.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { catalogPath, findCatalogEntry, installRefusal, loadCatalog, parseCatalog } from '../../server/models/catalog.js';
import { installPretrained } from '../../server/models/pretrained.js';
import { inspectModel, listModels } from '../../server/models/repository.js';
import { tempDir } from '../helpers.js';
import { FIXTURE_MODEL_NAME, installFixtureModel } from '../fixtures/nnunet-model.js';

const HASH = 'a'.repeat(64);

const v2Entry = (over: Record<string, unknown> = {}) => ({
  name: 'hippo-small',
  description: 'Hippocampus, small net',
  dataset: 'Dataset104_HippoDev',
  channels: [{ name: 'MRI', meaning: 'T1-weighted brain MRI crop' }],
  labels: { background: 0, Anterior: 1, Posterior: 2 },
  licence: 'CC BY-SA 4.0',
  citation: 'Isensee et al. 2021',
  urls: ['http://127.0.0.1:1/model.zip'],
  sha256: HASH,
  size_bytes: 1234,
  format: 'nnunetv2_zip',
  ...over,
});

describe('pretrained catalog', () => {
  it("the shipped catalog loads: nnU-Net v1's Zenodo models are listed as not runnable, without invented hashes", () => {
    const catalog = loadCatalog(catalogPath());
    assert.equal(catalog.version, 1);
    assert.ok(catalog.entries.length >= 20);
    const hippo = findCatalogEntry(catalog, 'Task004_Hippocampus');
    assert.equal(hippo.format, 'nnunetv1_zip');
    assert.equal(hippo.runnable, false);
    assert.equal(hippo.sha256, null);
    assert.deepEqual(hippo.urls, ['https://zenodo.org/record/4003545/files/Task004_Hippocampus.zip?download=1']);
    assert.deepEqual(findCatalogEntry(catalog, 'Task005_Prostate').channels.map((c) => c.name), ['T2', 'ADC']);
    for (const e of catalog.entries) {
      assert.ok(e.urls.every((u) => u.startsWith('https://zenodo.org/record/')), e.name);
      if (e.format === 'nnunetv1_zip') assert.match(installRefusal(e, HASH)!, /nnU-Net v1 model zip.*cannot be installed or run/);
    }
  });

  it('NNUNET_CATALOG (or the config key) replaces the default file', () => {
    assert.equal(catalogPath('/etc/other.json'), '/etc/other.json');
    assert.match(catalogPath(undefined), /models\/catalog\.json$/);
  });

  it('a v2 entry installs with its own hash; without one the caller must pass it, and a different one is refused', () => {
    const entry = parseCatalog({ version: 1, entries: [v2Entry()] }, 'c.json').entries[0];
    assert.equal(entry.runnable, true);
    assert.equal(installRefusal(entry, undefined), undefined);
    assert.match(installRefusal(entry, 'b'.repeat(64))!, /differs from the catalog's/);
    const unknown = parseCatalog({ version: 1, entries: [v2Entry({ sha256: null, size_bytes: null })] }, 'c.json').entries[0];
    assert.match(installRefusal(unknown, undefined)!, /records no SHA-256 for "hippo-small": pass the expected hash/);
    assert.equal(installRefusal(unknown, HASH), undefined);
  });

  it('names the file, the entry and the field of every mistake', () => {
    const bad = (entry: Record<string, unknown>) => () => parseCatalog({ version: 1, entries: [entry] }, 'my.json');
    assert.throws(bad(v2Entry({ sha256: 'ABC' })), /my\.json: entries\[0\] \("hippo-small"\)\.sha256: must be 64 lowercase hex/);
    assert.throws(bad(v2Entry({ format: 'onnx' })), /entries\[0\] \("hippo-small"\)\.format: must be one of nnunetv2_zip, nnunetv1_zip/);
    assert.throws(bad(v2Entry({ runnable: false })), /\.runnable: must be true for format nnunetv2_zip/);
    assert.throws(bad(v2Entry({ format: 'nnunetv1_zip', runnable: true })), /\.runnable: must be false for format nnunetv1_zip/);
    assert.throws(bad(v2Entry({ format: 'nnunetv1_zip' })), /\.dataset: must be a TaskXXX_Name folder name/);
    assert.throws(bad(v2Entry({ labels: null })), /\.labels: is required for an nnunetv2_zip entry/);
    assert.throws(bad(v2Entry({ urls: ['ftp://x/y.zip'] })), /\.urls\[0\]: must be http or https/);
    assert.throws(bad(v2Entry({ urls: [] })), /\.urls: an nnunetv2_zip entry needs at least one URL/);
    assert.throws(bad(v2Entry({ channels: [{ name: 'MRI' }] })), /\.channels\[0\]: must be \{"name": string, "meaning": string\}/);
    assert.throws(bad(v2Entry({ size_bytes: -3 })), /\.size_bytes: must be a positive integer, or null/);
    assert.throws(bad(v2Entry({ licence: '' })), /\.licence: must be a non-empty string/);
    assert.throws(() => parseCatalog({ version: 2, entries: [] }, 'my.json'), /my\.json: version: must be 1/);
    assert.throws(() => parseCatalog({ version: 1, entries: [v2Entry(), v2Entry()] }, 'my.json'), /entries\[1\] \("hippo-small"\)\.name: is used by an earlier entry/);
    assert.throws(() => findCatalogEntry(parseCatalog({ version: 1, entries: [v2Entry()] }, 'my.json'), 'nope'), /no model "nope" in the pretrained catalog my\.json \(available: hippo-small\)/);
  });

  it('reports an unreadable or non-JSON catalog with its path', () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'catalog.json');
      writeFileSync(file, '{ nope');
      assert.throws(() => loadCatalog(file), new RegExp(`pretrained catalog ${file} is not valid JSON`));
      assert.throws(() => loadCatalog(join(tmp.dir, 'missing.json')), /cannot be read: .*NNUNET_CATALOG/);
    } finally {
      tmp.cleanup();
    }
  });

  it('describes a bundled model (no URL, no hash) and installs it through the same checks', async () => {
    assert.throws(() => parseCatalog({ version: 1, entries: [v2Entry({ bundled: '../elsewhere' })] }, 'my.json'), /\.bundled: must be a folder path relative to the catalog file/);
    assert.throws(() => parseCatalog({ version: 1, entries: [v2Entry({ urls: [], bundled: 'demo', format: 'nnunetv1_zip', dataset: 'Task004_X', labels: null, runnable: false })] }, 'my.json'), /\.bundled: only nnunetv2_zip entries can be bundled/);
    const tmp = tempDir();
    try {
      installFixtureModel(join(tmp.dir, 'shipped'));
      const catalogFile = join(tmp.dir, 'catalog.json');
      writeFileSync(catalogFile, JSON.stringify({ version: 1, entries: [v2Entry({ name: 'demo', urls: [], sha256: null, size_bytes: null, bundled: 'shipped' })] }));
      const entry = findCatalogEntry(loadCatalog(catalogFile), 'demo');
      assert.equal(installRefusal(entry, undefined), undefined);
      const results = join(tmp.dir, 'results');
      const r = await installPretrained({ catalogName: 'demo' }, { resultsRoot: results, tmpDir: join(tmp.dir, 'tmp'), catalogFile, maxBytes: 1 << 30 });
      assert.deepEqual(r.installed.map((m) => m.model), [FIXTURE_MODEL_NAME]);
      assert.equal(inspectModel(listModels(results)[0]).state, 'READY');
      assert.deepEqual(readdirSync(join(tmp.dir, 'tmp')), []);
    } finally {
      tmp.cleanup();
    }
  });
});
