// `nnunet extract_fingerprint` and `nnunet plan_experiment` run on a copy of a fixture raw dataset:
// the files land where nnU-Net puts them and the plans equal the ones nnU-Net made.
import { strict as assert } from 'node:assert';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandIO } from '../../client/commands/types.js';
import { extractFingerprintCommand } from '../../client/commands/extract-fingerprint.js';
import { planExperimentCommand } from '../../client/commands/plan-experiment.js';
import { parseArgs } from '../../client/args.js';
import { DatasetError } from '../../server/dataset/errors.js';
import { SHARED, tempDir } from '../helpers.js';

const NAME = 'Dataset901_Synth';
const FIXTURE = join(SHARED, 'fixtures', 'nnunet_reference', 'preprocessing', NAME);

function io(env: NodeJS.ProcessEnv): CommandIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, env, stdout: (t) => out.push(t), stderr: (t) => err.push(t) };
}

async function run(command: typeof planExperimentCommand, argv: string[], env: NodeJS.ProcessEnv) {
  const streams = io(env);
  const code = await command.run(parseArgs(command.spec, argv) ?? {}, streams);
  return { code, out: streams.out.join('\n'), err: streams.err.join('\n') };
}

describe('client/planning commands', () => {
  let root: { dir: string; cleanup: () => void };
  let env: NodeJS.ProcessEnv;
  const pp = () => join(root.dir, 'pp', NAME);

  before(async () => {
    root = tempDir();
    cpSync(join(FIXTURE, 'raw'), join(root.dir, 'raw', NAME), { recursive: true });
    env = { nnUNet_raw: join(root.dir, 'raw'), nnUNet_preprocessed: join(root.dir, 'pp'), nnUNet_results: join(root.dir, 'results') };
  });
  after(() => root.cleanup());

  it('plan_experiment before extract_fingerprint says what to run', async () => {
    await assert.rejects(run(planExperimentCommand, ['-d', '901'], env), (e: Error) => e instanceof DatasetError && /extract_fingerprint/.test(e.message));
  });

  it('extract_fingerprint writes dataset_fingerprint.json and keeps it on a rerun', async () => {
    const first = await run(extractFingerprintCommand, ['-d', '901', '-np', '2', '--verify_dataset_integrity'], env);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /integrity check passed/);
    assert.match(first.out, /wrote .*dataset_fingerprint\.json \(12 case\(s\)\)/);
    const fp = JSON.parse(readFileSync(join(pp(), 'dataset_fingerprint.json'), 'utf8'));
    const ref = JSON.parse(readFileSync(join(FIXTURE, 'dataset_fingerprint.json'), 'utf8'));
    assert.deepEqual(fp.shapes_after_crop, ref.shapes_after_crop);
    const again = await run(extractFingerprintCommand, ['-d', NAME], env);
    assert.match(again.out, /kept existing/);
  });

  it('plan_experiment writes nnUNetPlans.json equal to nnU-Net\'s and copies dataset.json', async () => {
    const r = await run(planExperimentCommand, ['-d', '901'], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /3d_fullres: patch \d+x\d+x\d+, batch \d+/);
    const plans = JSON.parse(readFileSync(join(pp(), 'nnUNetPlans.json'), 'utf8'));
    const ref = JSON.parse(readFileSync(join(FIXTURE, 'nnUNetPlans.json'), 'utf8'));
    assert.deepEqual(plans.configurations, ref.configurations);
    assert.deepEqual(readFileSync(join(pp(), 'dataset.json')), readFileSync(join(root.dir, 'raw', NAME, 'dataset.json')));
  });

  it('plans ResEnc presets under their own name and keeps custom configurations on a rerun', async () => {
    const args = ['-d', '901', '-pl', 'nnUNetPlannerResEncM', '-overwrite_plans_name', 'MyResEnc'];
    assert.equal((await run(planExperimentCommand, args, env)).code, 0);
    const file = join(pp(), 'MyResEnc.json');
    const plans = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(plans.experiment_planner_used, 'nnUNetPlannerResEncM');
    assert.equal(plans.configurations['3d_fullres'].data_identifier, 'nnUNetPlans_3d_fullres');
    plans.configurations['3d_fullres_bs8'] = { inherits_from: '3d_fullres', batch_size: 8 };
    writeFileSync(file, JSON.stringify(plans));
    const rerun = await run(planExperimentCommand, args, env);
    assert.match(rerun.out, /kept custom configuration\(s\): 3d_fullres_bs8/);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).configurations['3d_fullres_bs8'], { inherits_from: '3d_fullres', batch_size: 8 });
  });

  it('refuses bad planner options as usage errors', async () => {
    assert.equal((await run(planExperimentCommand, ['-d', '901', '-overwrite_target_spacing', '1', '1'], env)).code, 2);
    assert.equal((await run(planExperimentCommand, ['-d', '901', '-gpu_memory_target', '0'], env)).code, 2);
    assert.throws(() => parseArgs(planExperimentCommand.spec, ['-d', '901', '-pl', 'Nope']), /invalid choice/);
  });

  it('extract_fingerprint --verify_dataset_integrity stops on a broken dataset', async () => {
    const broken = join(root.dir, 'raw', 'Dataset902_Broken');
    cpSync(join(root.dir, 'raw', NAME), broken, { recursive: true });
    rmSync(join(broken, 'labelsTr', 'synth_003.nii.gz'));
    const r = await run(extractFingerprintCommand, ['-d', '902', '--verify_dataset_integrity'], env);
    assert.equal(r.code, 1);
    assert.match(r.err, /synth_003\.nii\.gz/);
    assert.ok(!existsSync(join(root.dir, 'pp', 'Dataset902_Broken', 'dataset_fingerprint.json')));
  });
});
