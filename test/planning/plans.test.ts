// Plans files: every plans file nnU-Net wrote for the fixtures parses, survives a round trip, and is
// written back in nnU-Net's layout; inheritance and bad keys behave as PlansManager's.
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../../server/dataset/errors.js';
import { formatPlans, getConfiguration, loadPlans, parsePlans, savePlans, type Plans } from '../../server/planning/plans.js';
import { pythonFloatRepr, toPythonJson } from '../../server/util/python-json.js';
import { SHARED, tempDir } from '../helpers.js';

const REF = join(SHARED, 'fixtures', 'nnunet_reference');

function fixturePlansFiles(): string[] {
  const files: string[] = [];
  for (const group of ['planning', 'preprocessing']) {
    for (const ds of readdirSync(join(REF, group))) {
      for (const f of readdirSync(join(REF, group, ds))) if (/Plans\.json$/.test(f)) files.push(join(REF, group, ds, f));
    }
  }
  files.push(join(SHARED, 'fixtures', 'observed', 'tiny_nnUNetPlans.json'));
  return files;
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Plans;

describe('planning/plans', () => {
  const files = fixturePlansFiles();

  it('finds the fixture plans files', () => {
    assert.ok(files.length >= 17, `found ${files.length}`);
  });

  for (const file of files) {
    const label = file.slice(REF.length - 'nnunet_reference'.length);
    it(`parses and round-trips ${label}`, async () => {
      const plans = await loadPlans(file);
      assert.deepEqual(plans, readJson(file));
      assert.deepEqual(parsePlans(JSON.parse(formatPlans(plans))), plans);
      for (const name of Object.keys(plans.configurations)) getConfiguration(plans, name);
    });

    it(`writes ${label} as nnU-Net does (key order, indentation, float spelling)`, () => {
      const text = readFileSync(file, 'utf8');
      assert.equal(formatPlans(parsePlans(JSON.parse(text))), text);
    });
  }

  it('resolves 3d_cascade_fullres through inherits_from like PlansManager', () => {
    const plans = readJson(join(REF, 'planning', 'Dataset601_LiverLike', 'nnUNetPlans.json'));
    const cascade = getConfiguration(plans, '3d_cascade_fullres');
    const fullres = getConfiguration(plans, '3d_fullres');
    assert.equal(cascade.previous_stage, '3d_lowres');
    assert.equal(cascade.inherits_from, undefined);
    assert.deepEqual({ ...cascade, previous_stage: undefined }, { ...fullres, previous_stage: undefined });
    cascade.patch_size[0] = 1;
    assert.notEqual(getConfiguration(plans, '3d_fullres').patch_size[0], 1, 'the result is a copy');
  });

  it('lets a child override single keys of its parent', () => {
    const plans = readJson(join(REF, 'planning', 'Dataset602_ACDCLike', 'nnUNetPlans.json'));
    plans.configurations['3d_fullres_bs4'] = { inherits_from: '3d_fullres', batch_size: 7 };
    const c = getConfiguration(parsePlans(plans), '3d_fullres_bs4');
    assert.equal(c.batch_size, 7);
    assert.deepEqual(c.patch_size, [20, 224, 224]);
  });

  it('refuses inheritance cycles and unknown parents', () => {
    const plans = readJson(join(REF, 'planning', 'Dataset602_ACDCLike', 'nnUNetPlans.json'));
    plans.configurations.a = { inherits_from: 'b' };
    plans.configurations.b = { inherits_from: 'a' };
    assert.throws(() => parsePlans(plans, 'p.json'), (e: Error) => e instanceof DatasetError && /circular inheritance/.test(e.message));
    delete plans.configurations.b;
    assert.throws(() => parsePlans(plans), /configurations\.b: no such configuration/);
  });

  it('names the key and the reason for bad values', () => {
    const base = () => readJson(join(REF, 'planning', 'Dataset602_ACDCLike', 'nnUNetPlans.json'));
    const cases: [(p: Plans) => void, RegExp][] = [
      [(p) => delete (p as Partial<Plans>).plans_name, /plans_name: required key is missing/],
      [(p) => (p.transpose_backward = [1, 0, 2]), /transpose_backward: must invert/],
      [(p) => ((p.configurations['2d'] as Record<string, unknown>).batch_size = 0), /configurations\.2d\.batch_size: must be a positive integer/],
      [(p) => ((p.configurations['3d_fullres'] as Record<string, unknown>).spacing = [1, 1]), /configurations\.3d_fullres\.spacing: must have 3 entries/],
      [(p) => delete (p.configurations['2d'] as Record<string, unknown>).architecture, /configurations\.2d\.architecture: required key is missing/],
      [(p) => (p.configurations['2d'].architecture!.arch_kwargs.strides = [[1, 1]]), /arch_kwargs\.strides: must be 6 lists of 2/],
      [(p) => (p.foreground_intensity_properties_per_channel['0'].std = NaN), /foreground_intensity_properties_per_channel\.0\.std: must be a finite number/],
    ];
    for (const [mutate, message] of cases) {
      const p = base();
      mutate(p);
      assert.throws(() => parsePlans(p, 'x.json'), (e: Error) => e instanceof DatasetError && message.test(e.message) && e.message.startsWith('x.json: '), String(message));
    }
  });

  it('converts pre-architecture configurations like PlansManager', () => {
    const plans = readJson(join(REF, 'planning', 'Dataset602_ACDCLike', 'nnUNetPlans.json'));
    const c = plans.configurations['3d_fullres'] as Record<string, unknown>;
    const kw = (c.architecture as { arch_kwargs: Record<string, unknown> }).arch_kwargs;
    delete c.architecture;
    Object.assign(c, {
      UNet_class_name: 'PlainConvUNet',
      UNet_base_num_features: 32,
      unet_max_num_features: 320,
      n_conv_per_stage_encoder: kw.n_conv_per_stage,
      n_conv_per_stage_decoder: kw.n_conv_per_stage_decoder,
      num_pool_per_axis: [3, 5, 5],
      pool_op_kernel_sizes: kw.strides,
      conv_kernel_sizes: kw.kernel_sizes,
    });
    const converted = getConfiguration(parsePlans(plans), '3d_fullres');
    assert.deepEqual(converted.architecture.arch_kwargs, kw);
  });

  it('saves atomically and loads back equal', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const plans = readJson(join(REF, 'planning', 'Dataset603_BraTSLike', 'nnUNetResEncUNetLPlans.json'));
      const out = join(dir, 'sub', 'nnUNetResEncUNetLPlans.json');
      await savePlans(out, plans);
      assert.deepEqual(await loadPlans(out), plans);
      assert.deepEqual(readdirSync(join(dir, 'sub')), ['nnUNetResEncUNetLPlans.json']);
    } finally {
      cleanup();
    }
  });

  it('spells numbers like Python json', () => {
    assert.equal(pythonFloatRepr(1e-5), '1e-05');
    assert.equal(pythonFloatRepr(1), '1.0');
    assert.equal(pythonFloatRepr(0.0001), '0.0001');
    assert.equal(pythonFloatRepr(1e16), '1e+16');
    assert.equal(pythonFloatRepr(123456789012345.6), '123456789012345.6');
    assert.equal(pythonFloatRepr(1.5418237473946959), '1.5418237473946959');
    assert.equal(toPythonJson({ b: [], a: 'é' }, { sortKeys: true }), '{\n    "a": "\\u00e9",\n    "b": []\n}');
  });
});
