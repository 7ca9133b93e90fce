// preprocessCase against the real nnU-Net v2's preprocessed fixtures (every case, both
// configurations), the inference path, the cascade input, and bad input.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabelManager, parseDatasetJson } from '../../server/dataset/index.js';
import { readNpy } from '../../server/io/npy.js';
import { getConfiguration, loadPlans, type Plans } from '../../server/planning/plans.js';
import { readRawCase } from '../../server/preprocessing/case-files.js';
import { pythonRound } from '../../server/preprocessing/resampling.js';
import { preprocessCase, transposeVolume } from '../../server/preprocessing/preprocessor.js';
import { SHARED } from '../helpers.js';

const FIXTURES = join(SHARED, 'fixtures', 'nnunet_reference', 'preprocessing');
const DATASETS = ['Dataset901_Synth', 'Dataset902_SynthCT', 'Dataset903_Synth2ch', 'Dataset905_SynthResample'];

interface FixtureDataset {
  root: string;
  plans: Plans;
  labels: LabelManager;
  channels: number;
}

async function loadFixture(name: string): Promise<FixtureDataset> {
  const root = join(FIXTURES, name);
  const { json } = parseDatasetJson(JSON.parse(readFileSync(join(root, 'raw', 'dataset.json'), 'utf8')));
  return { root, plans: await loadPlans(join(root, 'nnUNetPlans.json')), labels: LabelManager.fromDatasetJson(json), channels: Object.keys(json.channel_names).length };
}

function rawFiles(ds: FixtureDataset, id: string): { images: string[]; label: string } {
  const images = Array.from({ length: ds.channels }, (_, c) => join(ds.root, 'raw', 'imagesTr', `${id}_${String(c).padStart(4, '0')}.nii.gz`));
  return { images, label: join(ds.root, 'raw', 'labelsTr', `${id}.nii.gz`) };
}

const results: string[] = [];

describe('preprocessing/preprocessor', function () {
  before(function () {
    if (!existsSync(FIXTURES)) this.skip();
  });
  after(() => {
    if (results.length > 0) console.log(`      fixture parity (max |data diff|, seg mismatches):\n        ${results.join('\n        ')}`);
  });

  for (const name of DATASETS) {
    describe(`${name} matches nnU-Net v2's preprocessing`, () => {
      for (const configuration of ['2d', '3d_fullres']) {
        it(`${configuration}: data, seg and properties of every fixture case`, async () => {
          const ds = await loadFixture(name);
          const folder = join(ds.root, 'preprocessed', `nnUNetPlans_${configuration}`);
          const ids = readdirSync(folder)
            .filter((f) => f.endsWith('_data.npy'))
            .map((f) => f.slice(0, -'_data.npy'.length));
          assert.ok(ids.length > 0);
          let worst = 0;
          let segMismatches = 0;
          for (const id of ids) {
            const files = rawFiles(ds, id);
            const raw = await readRawCase(files.images, files.label);
            const ours = preprocessCase(raw.images, raw.seg, raw.input, ds.plans, configuration, ds.labels);
            const refData = await readNpy(join(folder, `${id}_data.npy`));
            const refSeg = await readNpy(join(folder, `${id}_seg.npy`));
            const props = JSON.parse(readFileSync(join(folder, `${id}_properties.json`), 'utf8'));

            assert.deepEqual([ours.channels, ...ours.shape], refData.shape, `${id} data shape`);
            for (let i = 0; i < ours.data.length; i++) worst = Math.max(worst, Math.abs(ours.data[i] - (refData.data as Float32Array)[i]));
            const seg = ours.seg as Int16Array;
            let bad = 0;
            for (let i = 0; i < seg.length; i++) if (seg[i] !== refSeg.data[i]) bad++;
            segMismatches += bad;
            assert.ok(bad <= seg.length * 0.001, `${id}: ${bad} seg voxels differ`);

            assert.deepEqual(ours.properties.spacing, props.spacing);
            assert.deepEqual(ours.properties.shape_before_cropping, props.shape_before_cropping);
            assert.deepEqual(ours.properties.bbox_used_for_cropping, props.bbox_used_for_cropping);
            assert.deepEqual(ours.properties.shape_after_cropping_and_before_resampling, props.shape_after_cropping_and_before_resampling);

            const locations = ours.properties.class_locations ?? {};
            assert.deepEqual(Object.keys(locations).sort(), Object.keys(props.class_locations).sort());
            const [, n1, n2] = ours.shape;
            for (const [key, coords] of Object.entries(locations)) {
              assert.equal(coords.length, props.class_locations[key].length, `${id} class ${key} count`);
              for (const [c, x, y, z] of coords) assert.ok(c === 0 && seg[(x * n1 + y) * n2 + z] === Number(key), `${id} class ${key} at ${x},${y},${z}`);
            }
            // The draws reproduce numpy's RandomState(1234) exactly, so with an identical seg the coordinates are identical.
            if (bad === 0) assert.deepEqual(locations, props.class_locations, `${id} class locations`);
          }
          results.push(`${name} ${configuration}: ${worst.toExponential(2)}, ${segMismatches} (${ids.length} cases)`);
          // Up to one float32 ulp of the normalised values (numpy sums the statistics pairwise in float32).
          assert.ok(worst < 2e-6, `max |diff| ${worst}`);
        });
      }
    });
  }

  describe('one code path for inference', () => {
    it('gives the same data without a segmentation, a 0/-1 nonzero seg and no class locations', async () => {
      const ds = await loadFixture('Dataset903_Synth2ch');
      const raw = await readRawCase(rawFiles(ds, 'synth2ch_000').images, rawFiles(ds, 'synth2ch_000').label);
      const training = preprocessCase(raw.images, raw.seg, raw.input, ds.plans, '3d_fullres', ds.labels);
      const inference = preprocessCase(raw.images, undefined, raw.input, ds.plans, '3d_fullres', ds.labels);
      assert.deepEqual(inference.data, training.data);
      assert.equal(inference.properties.class_locations, undefined);
      assert.deepEqual(new Set(inference.seg), new Set([-1, 0]));
      for (let i = 0; i < training.seg!.length; i++) assert.equal(inference.seg![i] < 0, training.seg![i] < 0);
      const lean = preprocessCase(raw.images, undefined, raw.input, ds.plans, '3d_fullres', ds.labels, { withoutSegmentation: true });
      assert.equal(lean.seg, undefined);
      assert.deepEqual(lean.data, training.data);
    });

    it('appends the previous stage one-hot for the cascade', async () => {
      const ds = await loadFixture('Dataset901_Synth');
      const files = rawFiles(ds, 'synth_000');
      const raw = await readRawCase(files.images, files.label);
      const out = preprocessCase(raw.images, undefined, raw.input, ds.plans, '3d_fullres', ds.labels, { previousStageSegmentation: raw.seg });
      assert.equal(out.channels, 3);
      const n = out.seg!.length;
      for (let i = 0; i < n; i++) {
        assert.equal(out.data[n + i], out.seg![i] === 1 ? 1 : 0);
        assert.equal(out.data[2 * n + i], out.seg![i] === 2 ? 1 : 0);
      }
      assert.equal(out.properties.class_locations, undefined);
    });
  });

  describe('transpose_forward', () => {
    it('transposes data, shapes and spacing but stores the raw spacing', async () => {
      const ds = await loadFixture('Dataset905_SynthResample');
      const plans: Plans = { ...ds.plans, transpose_forward: [2, 0, 1], transpose_backward: [1, 2, 0] };
      const config = { ...getConfiguration(ds.plans, '3d_fullres'), spacing: [1, 1, 1] };
      const files = rawFiles(ds, 'resamp_002');
      const raw = await readRawCase(files.images, files.label);
      const out = preprocessCase(raw.images, raw.seg, raw.input, plans, config, ds.labels);
      const [a, b, c] = raw.input.shape;
      assert.deepEqual(out.properties.shape_before_cropping, [c, a, b]);
      assert.deepEqual(out.properties.spacing, raw.input.spacing);
      const sp = raw.input.spacing;
      assert.deepEqual(out.shape, [pythonRound(sp[2] * c), pythonRound(sp[0] * a), pythonRound(sp[1] * b)]);
      const t = transposeVolume(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4], [2, 0, 1]);
      assert.equal(t[1], 4); // out[0][0][1] = in[0][1][0]
    });
  });

  describe('bad input', () => {
    const plansFor = async () => loadFixture('Dataset901_Synth');

    it('turns a constant channel into zeros', async () => {
      const ds = await plansFor();
      const out = preprocessCase([new Float32Array(4 * 5 * 6).fill(3)], undefined, { spacing: [3, 0.8, 0.8], shape: [4, 5, 6] }, ds.plans, '3d_fullres', ds.labels);
      assert.ok(out.data.every((v) => v === 0));
    });

    it('preprocesses an image one voxel thick without NaN', async () => {
      const ds = await plansFor();
      const image = Float32Array.from({ length: 20 * 20 }, (_, i) => 1 + (i % 7));
      const out = preprocessCase([image], undefined, { spacing: [6, 0.8, 0.8], shape: [1, 20, 20] }, ds.plans, '3d_fullres', ds.labels);
      assert.deepEqual(out.shape, [2, 20, 20]);
      assert.ok(out.data.every(Number.isFinite));
      const thin = { spacing: [1, 0.8, 0.8], shape: [1, 20, 20] };
      assert.throws(() => preprocessCase([image], undefined, thin, ds.plans, '3d_fullres', ds.labels), /thinner than half a target voxel/);
    });

    it('refuses zero or NaN spacing, NaN voxels and mismatched channels with clear errors', async () => {
      const ds = await plansFor();
      const image = new Float32Array(27).fill(1);
      const shape = [3, 3, 3];
      assert.throws(() => preprocessCase([image], undefined, { spacing: [0, 1, 1], shape }, ds.plans, '3d_fullres', ds.labels), /spacing must be 3 finite positive/);
      assert.throws(() => preprocessCase([image], undefined, { spacing: [NaN, 1, 1], shape }, ds.plans, '3d_fullres', ds.labels), /spacing/);
      const nan = image.slice();
      nan[5] = NaN;
      assert.throws(() => preprocessCase([nan], undefined, { spacing: [1, 1, 1], shape }, ds.plans, '3d_fullres', ds.labels), /non-finite value/);
      assert.throws(() => preprocessCase([image, image], undefined, { spacing: [1, 1, 1], shape }, ds.plans, '3d_fullres', ds.labels), /normalises 1/);
      assert.throws(() => preprocessCase([image], new Int16Array(5), { spacing: [1, 1, 1], shape }, ds.plans, '3d_fullres', ds.labels), /segmentation has 5 voxels/);
    });
  });
});
