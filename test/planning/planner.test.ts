// The planner against nnU-Net's own plans: every fixture fingerprint planned with the default and
// ResEnc planners gives nnU-Net's plans, configuration objects and file text alike; plus the
// building blocks (topology, feature-map estimate) and bad inputs.
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatasetJson } from '../../server/dataset/dataset-json.js';
import { DatasetError } from '../../server/dataset/errors.js';
import type { DatasetFingerprint } from '../../server/planning/fingerprint.js';
import { roundHalfEven, percentile, median } from '../../server/planning/numeric.js';
import { planExperiment } from '../../server/planning/planner.js';
import { formatPlans, getConfiguration, parsePlans, type Plans } from '../../server/planning/plans.js';
import { computeNewShape, fullresTargetSpacing } from '../../server/planning/target-spacing.js';
import { getPoolAndConvProps } from '../../server/planning/topology.js';
import { convFeatureMapSize } from '../../server/planning/vram.js';
import { SHARED } from '../helpers.js';

const REF = join(SHARED, 'fixtures', 'nnunet_reference');
const readJson = <T>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;

const PLANNERS: [string, string][] = [
  ['ExperimentPlanner', 'nnUNetPlans.json'],
  ['nnUNetPlannerResEncM', 'nnUNetResEncUNetMPlans.json'],
  ['nnUNetPlannerResEncL', 'nnUNetResEncUNetLPlans.json'],
];

interface Case {
  label: string;
  folder: string;
  planner: string;
  file: string;
}

function fixtureCases(): Case[] {
  const out: Case[] = [];
  for (const ds of readdirSync(join(REF, 'planning'))) {
    for (const [planner, file] of PLANNERS) out.push({ label: `${ds} ${planner}`, folder: join(REF, 'planning', ds), planner, file });
  }
  for (const ds of readdirSync(join(REF, 'preprocessing'))) {
    out.push({ label: `${ds} ExperimentPlanner`, folder: join(REF, 'preprocessing', ds), planner: 'ExperimentPlanner', file: 'nnUNetPlans.json' });
  }
  return out;
}

function load(c: Case): { fp: DatasetFingerprint; json: DatasetJson; text: string; ref: Plans } {
  const jsonFile = existsSync(join(c.folder, 'dataset.json')) ? join(c.folder, 'dataset.json') : join(c.folder, 'raw', 'dataset.json');
  const text = readFileSync(join(c.folder, c.file), 'utf8');
  return { fp: readJson(join(c.folder, 'dataset_fingerprint.json')), json: readJson(jsonFile), text, ref: JSON.parse(text) as Plans };
}

describe('planning/planner', () => {
  describe('reproduces nnU-Net v2 plans from the fixture fingerprints', () => {
    for (const c of fixtureCases()) {
      it(c.label, () => {
        const { fp, json, text, ref } = load(c);
        const ours = planExperiment(ref.dataset_name, fp, json, { planner: c.planner });
        assert.deepEqual(Object.keys(ours.configurations), Object.keys(ref.configurations));
        for (const name of Object.keys(ref.configurations)) assert.deepEqual(ours.configurations[name], ref.configurations[name], name);
        // The LiverLike default plans were written by a planner subclass named "T"; everything else is nnU-Net's.
        const expected = ref.experiment_planner_used === 'T' ? { ...ref, experiment_planner_used: 'ExperimentPlanner' } : ref;
        assert.deepEqual(ours, expected);
        if (ref.experiment_planner_used !== 'T') assert.equal(formatPlans(ours), text, 'byte-identical plans file');
        parsePlans(ours);
      });
    }

    it('observed tiny dataset (real nnU-Net run, padded patch above the median, 5 % batch cap)', () => {
      const fp = readJson<DatasetFingerprint>(join(SHARED, 'fixtures', 'observed', 'tiny_dataset_fingerprint.json'));
      const ref = readJson<Plans>(join(SHARED, 'fixtures', 'observed', 'tiny_nnUNetPlans.json'));
      const json = { channel_names: { '0': 'MRI' }, labels: { background: 0, a: 1, b: 2 }, numTraining: 10, file_ending: '.nii.gz', overwrite_image_reader_writer: 'NibabelIO' };
      assert.deepEqual(planExperiment(ref.dataset_name, fp, json), ref);
    });
  });

  it('walks the LiverLike lowres search to 1.03^22 x the fullres spacing and links the cascade', () => {
    const { fp, json } = load({ label: '', folder: join(REF, 'planning', 'Dataset601_LiverLike'), planner: '', file: 'nnUNetPlans.json' });
    const plans = planExperiment('Dataset601_LiverLike', fp, json);
    const lowres = getConfiguration(plans, '3d_lowres');
    const fullres = getConfiguration(plans, '3d_fullres');
    lowres.spacing.forEach((s, i) => assert.ok(Math.abs(s / fullres.spacing[i] - 1.03 ** 22) < 1e-9));
    assert.equal(lowres.next_stage, '3d_cascade_fullres');
    assert.deepEqual(plans.configurations['3d_cascade_fullres'], { inherits_from: '3d_fullres', previous_stage: '3d_lowres' });
    assert.equal(fullres.batch_dice, true);
    assert.equal(lowres.batch_dice, false);
  });

  it('ResEnc XL plans larger patches than L for the same dataset', () => {
    const { fp, json } = load({ label: '', folder: join(REF, 'planning', 'Dataset601_LiverLike'), planner: '', file: 'nnUNetPlans.json' });
    const l = getConfiguration(planExperiment('D', fp, json, { planner: 'nnUNetPlannerResEncL' }), '3d_fullres');
    const xl = planExperiment('D', fp, json, { planner: 'nnUNetPlannerResEncXL' });
    const x = getConfiguration(xl, '3d_fullres');
    assert.equal(xl.plans_name, 'nnUNetResEncUNetXLPlans');
    assert.equal(x.data_identifier, 'nnUNetPlans_3d_fullres', 'ResEnc presets reuse the default preprocessed data');
    assert.ok(x.patch_size.reduce((a, b) => a * b) * x.batch_size > l.patch_size.reduce((a, b) => a * b) * l.batch_size);
  });

  it('honours -overwrite_target_spacing, -gpu_memory_target and -overwrite_plans_name', () => {
    const { fp, json } = load({ label: '', folder: join(REF, 'planning', 'Dataset603_BraTSLike'), planner: '', file: 'nnUNetPlans.json' });
    const plans = planExperiment('D', fp, json, { overwriteTargetSpacing: [2, 1, 1], gpuMemoryTargetGB: 16, plansName: 'MyPlans' });
    const c = getConfiguration(plans, '3d_fullres');
    assert.deepEqual(c.spacing, [2, 1, 1]);
    assert.equal(c.data_identifier, 'MyPlans_3d_fullres');
    assert.equal(plans.plans_name, 'MyPlans');
    const base = getConfiguration(planExperiment('D', fp, json, { overwriteTargetSpacing: [2, 1, 1] }), '3d_fullres');
    assert.ok(c.patch_size.reduce((a, b) => a * b) * c.batch_size > base.patch_size.reduce((a, b) => a * b) * base.batch_size);
  });

  describe('building blocks', () => {
    it('topology of the LiverLike fullres patch (REFERENCE §3.7)', () => {
      const t = getPoolAndConvProps([1.5, 0.7522, 0.7522], [80, 192, 160]);
      assert.deepEqual(t.strides, [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]);
      assert.deepEqual(t.patchSize, [80, 192, 160]);
      const acdc = getPoolAndConvProps([5, 1.5418, 1.5418], [20, 202, 194]);
      assert.deepEqual(acdc.kernelSizes[0], [1, 3, 3]);
      assert.deepEqual(acdc.patchSize, [20, 224, 224]);
    });

    it('feature-map estimate matches dynamic_network_architectures', () => {
      const strides3 = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]];
      const plain3d = { kind: 'PlainConvUNet' as const, featuresPerStage: [32, 64, 128, 256, 320, 320], strides: strides3, encoderDepth: [2, 2, 2, 2, 2, 2], decoderConvs: [2, 2, 2, 2, 2], numClasses: 3 };
      assert.equal(convFeatureMapSize(plain3d, [80, 192, 160]), 530668800);
      const s2 = [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2], [2, 2], [2, 2], [2, 2]];
      assert.equal(convFeatureMapSize({ kind: 'PlainConvUNet', featuresPerStage: [32, 64, 128, 256, 512, 512, 512, 512], strides: s2, encoderDepth: new Array(8).fill(2), decoderConvs: new Array(7).fill(2), numClasses: 3 }, [512, 512]), 82886656);
      // The values quoted in nnU-Net's residual_encoder_unet_planners.py (deep supervision on).
      const resenc = { kind: 'ResidualEncoderUNet' as const, featuresPerStage: [32, 64, 128, 256, 320, 320], strides: [[1, 1, 1], ...new Array(5).fill([2, 2, 2])], encoderDepth: [1, 3, 4, 6, 6, 6], decoderConvs: [1, 1, 1, 1, 1], numClasses: 3, deepSupervision: true };
      assert.equal(convFeatureMapSize(resenc, [128, 128, 128]), 558319104);
      const resenc2d = { kind: 'ResidualEncoderUNet' as const, featuresPerStage: [32, 64, 128, 256, 512, 512, 512], strides: [[1, 1], ...new Array(6).fill([2, 2])], encoderDepth: [1, 3, 4, 6, 6, 6, 6], decoderConvs: new Array(6).fill(1), numClasses: 3, deepSupervision: true };
      assert.equal(convFeatureMapSize(resenc2d, [512, 512]), 129793792);
    });

    it('uses Python rounding and numpy percentiles', () => {
      assert.deepEqual([0.5, 1.5, 2.5, 51.5, -0.5, -1.5].map(roundHalfEven), [0, 2, 2, 52, 0, -2]);
      assert.equal(percentile([1, 2, 3.5], 0.5), 1.01);
      assert.equal(percentile([5, 6.5, 10, 10, 10], 10), 5.6);
      assert.equal(median([1, 2, 3, 4]), 2.5);
      assert.deepEqual(computeNewShape([103, 57, 51], [1, 1, 1], [2, 2, 2]), [52, 28, 26]);
    });

    it('takes the 10th percentile on a coarse axis with few voxels (ACDC-like)', () => {
      const spacings = [[10, 1.5, 1.5], [10, 1.5, 1.5], [5, 1.5, 1.5], [6.5, 1.5, 1.5], [10, 1.5, 1.5]];
      const shapes = spacings.map(() => [10, 200, 200]);
      assert.deepEqual(fullresTargetSpacing(spacings, shapes), [5.6, 1.5, 1.5]);
    });
  });

  describe('bad input', () => {
    const base = () => load({ label: '', folder: join(REF, 'planning', 'Dataset602_ACDCLike'), planner: '', file: 'nnUNetPlans.json' });

    it('plans a 2D dataset (single slices) with the 2d configuration only', () => {
      const { fp, json } = base();
      const fp2d: DatasetFingerprint = { ...fp, shapes_after_crop: fp.shapes_after_crop.map(([, y, x]) => [1, y, x]), spacings: fp.spacings.map(([, y, x]) => [999 * y, y, x]) };
      const plans = planExperiment('D', fp2d, json);
      assert.deepEqual(Object.keys(plans.configurations), ['2d']);
      assert.deepEqual(getConfiguration(plans, '2d').patch_size, [224, 224]);
    });

    it('plans a dataset whose channel is constant (std 0) without NaN', () => {
      const { fp, json } = base();
      const constant = { max: 7, mean: 7, median: 7, min: 7, percentile_00_5: 7, percentile_99_5: 7, std: 0 };
      const plans = planExperiment('D', { ...fp, foreground_intensity_properties_per_channel: { '0': constant } }, json);
      assert.ok(!/NaN|Infinity/.test(formatPlans(plans)));
    });

    it('refuses spacing 0 or NaN, a mismatched channel count and a bad memory target with a DatasetError', () => {
      const { fp, json } = base();
      const zero = { ...fp, spacings: fp.spacings.map((s, i) => (i === 3 ? [0, s[1], s[2]] : s)) };
      assert.throws(() => planExperiment('D', zero, json), (e: Error) => e instanceof DatasetError && /spacings\[3\] must be 3 positive numbers/.test(e.message));
      const nan = { ...fp, spacings: fp.spacings.map((s, i) => (i === 0 ? [NaN, s[1], s[2]] : s)) };
      assert.throws(() => planExperiment('D', nan, json), DatasetError);
      assert.throws(() => planExperiment('D', fp, { ...json, channel_names: { '0': 'MRI', '1': 'T2' } }), /intensity statistics for 1 channel/);
      assert.throws(() => planExperiment('D', fp, json, { gpuMemoryTargetGB: 0 }), /gpu_memory_target/);
      assert.throws(() => planExperiment('D', fp, json, { overwriteTargetSpacing: [1, 1] }), /overwrite_target_spacing/);
    });

    it('says so when no patch fits a tiny memory target instead of looping', () => {
      const { fp, json } = base();
      assert.throws(() => planExperiment('D', fp, json, { gpuMemoryTargetGB: 1e-9 }), (e: Error) => e instanceof DatasetError && /no patch size fits/.test(e.message));
    });
  });
});
