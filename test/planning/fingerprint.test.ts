// Dataset fingerprint: numpy's RandomState stream, the sampled statistics, and the fingerprints of
// the fixture datasets against the ones nnU-Net extracted from the same raw data; bad datasets fail
// with a DatasetError that names the problem.
import { strict as assert } from 'node:assert';
import { cpSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DatasetError } from '../../server/dataset/errors.js';
import { writeNifti } from '../../server/io/nifti.js';
import { sampleHistogram } from '../../server/planning/fingerprint-case.js';
import { extractFingerprint, intensityStatistics, mergeHistograms, samplesPerCase, type DatasetFingerprint } from '../../server/planning/fingerprint.js';
import { planExperiment } from '../../server/planning/planner.js';
import { RandomState } from '../../server/util/mt19937.js';
import { SHARED, tempDir } from '../helpers.js';
import { pythonEval, scipyUnavailable } from '../preprocessing/python.js';

const PREPROCESSING = join(SHARED, 'fixtures', 'nnunet_reference', 'preprocessing');
const MEAN_STD_RTOL = 1e-5;
/** Hand-made datasets need no 1e8 samples to test their logic. */
const FAST = 1e5;

interface TinyCase {
  images: Float32Array[];
  label: Uint8Array;
  shape: [number, number, number];
  spacing?: [number, number, number];
}

/** Writes a raw dataset of hand-made cases; returns the env pointing at fresh roots. */
async function writeDataset(root: string, name: string, channels: string[], cases: TinyCase[]): Promise<NodeJS.ProcessEnv> {
  const folder = join(root, 'raw', name);
  mkdirSync(join(folder, 'imagesTr'), { recursive: true });
  mkdirSync(join(folder, 'labelsTr'), { recursive: true });
  const json = { channel_names: Object.fromEntries(channels.map((c, i) => [String(i), c])), labels: { background: 0, fg: 1 }, numTraining: cases.length, file_ending: '.nii.gz' };
  writeFileSync(join(folder, 'dataset.json'), JSON.stringify(json));
  for (const [i, c] of cases.entries()) {
    const spacing = c.spacing ?? [1, 1, 1];
    const affine = [[spacing[2], 0, 0, 0], [0, spacing[1], 0, 0], [0, 0, spacing[0], 0], [0, 0, 0, 1]];
    for (const [k, data] of c.images.entries()) {
      await writeNifti(join(folder, 'imagesTr', `c${i}_${String(k).padStart(4, '0')}.nii.gz`), { data, shape: c.shape, channels: 1, spacing, affine }, { datatype: 'float32' });
    }
    await writeNifti(join(folder, 'labelsTr', `c${i}.nii.gz`), { data: c.label, shape: c.shape, channels: 1, spacing, affine }, { datatype: 'uint8' });
  }
  return { nnUNet_raw: join(root, 'raw'), nnUNet_preprocessed: join(root, 'pp') };
}

/** A 6x8x8 body of `value` with a zero border and a 2x2x2 foreground cube. */
function boxCase(value: (i: number) => number, spacing?: [number, number, number]): TinyCase {
  const shape: [number, number, number] = [6, 8, 8];
  const img = new Float32Array(6 * 8 * 8);
  const label = new Uint8Array(6 * 8 * 8);
  for (let a = 1; a < 5; a++) for (let b = 1; b < 7; b++) for (let c = 1; c < 7; c++) img[(a * 8 + b) * 8 + c] = value((a * 8 + b) * 8 + c);
  for (let a = 2; a < 4; a++) for (let b = 3; b < 5; b++) for (let c = 3; c < 5; c++) label[(a * 8 + b) * 8 + c] = 1;
  return { images: [img], label, shape, spacing };
}

describe('planning/fingerprint', () => {
  it('draws numpy RandomState(1234).randint values', () => {
    const rs = new RandomState(1234);
    assert.deepEqual([...rs.randint(0, 100000, 4)], [92975, 58067, 34086, 60620]);
    assert.deepEqual([...rs.randint(0, 1, 3)], [0, 0, 0]);
    assert.deepEqual([...rs.randint(0, 3, 6)], [0, 0, 1, 1, 1, 2]);
    assert.deepEqual([...rs.randint(0, 2 ** 31, 2)], [852631582, 1296531115]);
  });

  it('samples like RandomState(1234).choice(values, n, replace=True)', () => {
    const values = Float32Array.from([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]);
    const h = sampleHistogram(values, 20, new RandomState(1234));
    // numpy: [1, 2, 9, 5, 5, 3, 1, 6, 3, 2, 5, 3, 9, 3, 3, 2, 4, 3, 9, 4]
    assert.deepEqual([...h.values], [1, 2, 3, 4, 5, 6, 9]);
    assert.deepEqual([...h.counts], [2, 3, 6, 2, 3, 1, 3]);
  });

  it('computes numpy statistics of the pooled samples', function () {
    if (scipyUnavailable()) this.skip();
    const rs = new RandomState(99);
    const parts = [0, 1, 2].map((k) => sampleHistogram(Float32Array.from({ length: 500 }, (_, i) => Math.fround(Math.sin(i * (k + 1)) * 100 + k)), 3333, rs));
    const stats = intensityStatistics(mergeHistograms(parts));
    const expanded = Float32Array.from(parts.flatMap((p) => [...p.values].flatMap((v, i) => new Array<number>(p.counts[i]).fill(v))));
    const ref = pythonEval('out = np.array([x.max(), x.mean(), np.percentile(x, 50), x.min(), np.percentile(x, 0.5), np.percentile(x, 99.5), x.std()], dtype=np.float64)', {
      x: { dtype: 'float32', shape: [expanded.length], data: expanded },
    }).data as Float64Array;
    const ours = [stats.max, stats.mean, stats.median, stats.min, stats.percentile_00_5, stats.percentile_99_5, stats.std];
    for (const i of [0, 2, 3, 4, 5]) assert.equal(ours[i], ref[i]);
    for (const i of [1, 6]) assert.ok(Math.abs(ours[i] - ref[i]) <= MEAN_STD_RTOL * Math.abs(ref[i]), `${ours[i]} vs ${ref[i]}`);
  });

  it('splits the 1e8 sample budget over the cases like int(10e7 // n)', () => {
    assert.equal(samplesPerCase(131), 763358);
    assert.equal(samplesPerCase(12), 8333333);
  });

  describe('matches the fingerprints nnU-Net extracted from the fixture raw datasets', () => {
    for (const name of ['Dataset901_Synth', 'Dataset902_SynthCT', 'Dataset903_Synth2ch', 'Dataset905_SynthResample']) {
      it(name, async () => {
        const { dir, cleanup } = tempDir();
        try {
          cpSync(join(PREPROCESSING, name, 'raw'), join(dir, 'raw', name), { recursive: true });
          const env = { nnUNet_raw: join(dir, 'raw'), nnUNet_preprocessed: join(dir, 'pp') };
          const { fingerprint: fp, file, computed } = await extractFingerprint(name, { env, numProcesses: 3 });
          assert.ok(computed);
          const ref = JSON.parse(readFileSync(join(PREPROCESSING, name, 'dataset_fingerprint.json'), 'utf8')) as DatasetFingerprint;
          assert.deepEqual(fp.shapes_after_crop, ref.shapes_after_crop);
          assert.deepEqual(fp.spacings, ref.spacings);
          assert.equal(fp.median_relative_size_after_cropping, ref.median_relative_size_after_cropping);
          for (const [c, r] of Object.entries(ref.foreground_intensity_properties_per_channel)) {
            const o = fp.foreground_intensity_properties_per_channel[c];
            // Same voxels drawn as nnU-Net: order statistics are exact.
            for (const k of ['min', 'max', 'median', 'percentile_00_5', 'percentile_99_5'] as const) assert.equal(o[k], r[k], `${c}.${k}`);
            // numpy sums float32 pairwise; we sum exactly and round once.
            for (const k of ['mean', 'std'] as const) assert.ok(Math.abs(o[k] - r[k]) <= MEAN_STD_RTOL * Math.abs(r[k]), `${c}.${k}: ${o[k]} vs ${r[k]}`);
          }
          // Written with nnU-Net's layout: sorted keys, 4-space indent.
          const text = readFileSync(file, 'utf8');
          assert.deepEqual(Object.keys(JSON.parse(text)), Object.keys(ref).sort());
          assert.ok(text.startsWith('{\n    "foreground_intensity_properties_per_channel": {\n        "0": {\n            "max": '));
          // The fingerprint plans to nnU-Net's plans.
          const rawJson = JSON.parse(readFileSync(join(dir, 'raw', name, 'dataset.json'), 'utf8'));
          const refPlans = JSON.parse(readFileSync(join(PREPROCESSING, name, 'nnUNetPlans.json'), 'utf8'));
          assert.deepEqual(planExperiment(name, fp, rawJson).configurations, refPlans.configurations);
        } finally {
          cleanup();
        }
      });
    }
  });

  it('keeps an existing fingerprint unless clean is asked for', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const env = await writeDataset(dir, 'Dataset950_Box', ['MRI'], [boxCase((i) => 1 + (i % 7)), boxCase((i) => 2 + (i % 5))]);
      const first = await extractFingerprint('950', { env, numProcesses: 1, foregroundSamplesTotal: FAST });
      const mtime = statSync(first.file).mtimeMs;
      const again = await extractFingerprint('950', { env });
      assert.equal(again.computed, false);
      assert.deepEqual(again.fingerprint, first.fingerprint);
      assert.equal(statSync(first.file).mtimeMs, mtime);
      assert.equal((await extractFingerprint('950', { env, clean: true, numProcesses: 1, foregroundSamplesTotal: FAST })).computed, true);
    } finally {
      cleanup();
    }
  });

  describe('bad input', () => {
    it('refuses a dataset without foreground anywhere', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const empty = boxCase(() => 3);
        empty.label.fill(0);
        const env = await writeDataset(dir, 'Dataset951_Empty', ['MRI'], [empty, { ...boxCase(() => 4), label: new Uint8Array(384) }]);
        await assert.rejects(extractFingerprint('951', { env, numProcesses: 1, foregroundSamplesTotal: FAST }), (e: Error) => e instanceof DatasetError && /no training case has foreground/.test(e.message));
      } finally {
        cleanup();
      }
    });

    it('gives std 0 (not NaN) for a constant channel', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const env = await writeDataset(dir, 'Dataset952_Const', ['CT'], [boxCase(() => 40), boxCase(() => 40)]);
        const { fingerprint } = await extractFingerprint('952', { env, numProcesses: 2, foregroundSamplesTotal: FAST });
        assert.deepEqual(fingerprint.foreground_intensity_properties_per_channel['0'], { max: 40, mean: 40, median: 40, min: 40, percentile_00_5: 40, percentile_99_5: 40, std: 0 });
        assert.deepEqual(fingerprint.shapes_after_crop, [[4, 6, 6], [4, 6, 6]]);
        assert.equal(fingerprint.median_relative_size_after_cropping, 144 / 384);
      } finally {
        cleanup();
      }
    });

    it('names the file whose spacing is 0', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const env = await writeDataset(dir, 'Dataset953_Zero', ['MRI'], [boxCase(() => 1), boxCase(() => 1)]);
        // Our writer derives pixdim from the affine, so zero pixdim[3] (the slice spacing) by hand.
        const file = join(dir, 'raw', 'Dataset953_Zero', 'imagesTr', 'c1_0000.nii.gz');
        const bytes = gunzipSync(readFileSync(file));
        new DataView(bytes.buffer, bytes.byteOffset).setFloat32(76 + 4 * 3, 0, true);
        writeFileSync(file, gzipSync(bytes));
        await assert.rejects(extractFingerprint('953', { env, numProcesses: 1, foregroundSamplesTotal: FAST }), (e: Error) => e instanceof DatasetError && /c1_0000\.nii\.gz: spacing must be positive/.test(e.message));
      } finally {
        cleanup();
      }
    });

    it('gives single-slice images a pseudo slice spacing so that only 2d is planned', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const slice = (): TinyCase => {
          const img = Float32Array.from({ length: 64 }, (_, i) => (i % 8 > 0 && i % 8 < 7 ? 10 + (i % 3) : 0));
          const label = Uint8Array.from({ length: 64 }, (_, i) => (i > 20 && i < 40 && i % 8 > 2 && i % 8 < 6 ? 1 : 0));
          return { images: [img], label, shape: [1, 8, 8], spacing: [0, 0.5, 0.5] };
        };
        const env = await writeDataset(dir, 'Dataset954_Flat', ['MRI'], [slice(), slice()]);
        const { fingerprint } = await extractFingerprint('954', { env, numProcesses: 1, foregroundSamplesTotal: FAST });
        assert.deepEqual(fingerprint.spacings[0], [499.5, 0.5, 0.5]);
        const json = JSON.parse(readFileSync(join(dir, 'raw', 'Dataset954_Flat', 'dataset.json'), 'utf8'));
        assert.deepEqual(Object.keys(planExperiment('Dataset954_Flat', fingerprint, json).configurations), ['2d']);
      } finally {
        cleanup();
      }
    });
  });
});
