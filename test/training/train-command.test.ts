// `nnunet train DATASET CONFIG FOLD` with nnU-Net's positional arguments and flags: epoch lines
// when not on a terminal, a clear error listing the supported trainers, then --val on the result.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, UsageError } from '../../client/args.js';
import { trainCommand } from '../../client/commands/train.js';
import { torchAvailable } from '../../server/engine/torch.js';
import { tempDir } from '../helpers.js';
import { makeTrainingFixture, type TrainingFixture } from './fixtures.js';

async function train(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const args = parseArgs(trainCommand.spec, argv);
  if (!args) throw new Error('help requested');
  const code = await trainCommand.run(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env });
  return { code, out, err };
}

describe('client/commands/train', function () {
  // Each test forks a fold process (tsx + libtorch start-up) and trains; the repo default of 60 s is tight on a busy machine.
  this.timeout(240_000);
  let fx: TrainingFixture;
  let cleanup = () => {};

  before(async function () {
    if (!torchAvailable()) {
      console.log('      libtorch is not available (server/native not built): train command tests skipped');
      return this.skip();
    }
    const t = tempDir('nnunet-train-cli-');
    cleanup = t.cleanup;
    fx = await makeTrainingFixture(t.dir, { id: 952 });
  });
  after(() => cleanup());

  it('parses nnUNetv2_train positionals and flags', () => {
    const args = parseArgs(trainCommand.spec, ['4', '3d_fullres', 'all', '-tr', 'nnUNetTrainer_5epochs', '--c', '--npz', '-device', 'cpu', '--num_epochs', '3']);
    assert.deepEqual([args?.dataset, args?.configuration, args?.fold, args?.trainer, args?.continue, args?.npz, args?.device, args?.numEpochs], ['4', '3d_fullres', 'all', 'nnUNetTrainer_5epochs', true, true, 'cpu', 3]);
    assert.throws(() => parseArgs(trainCommand.spec, ['4', '3d_fullres']), UsageError);
  });

  it('refuses an unknown trainer with the list of supported ones', async () => {
    const r = await train(['952', '3d_fullres', '0', '-tr', 'nnUNetTrainerFancy'], fx.env);
    assert.equal(r.code, 2);
    assert.match(r.err.join('\n'), /trainer 'nnUNetTrainerFancy' is not supported\. Supported trainers: nnUNetTrainer, nnUNetTrainer_1epoch, /);
  });

  it('trains a fold with epoch lines, then --val re-runs only the validation', async () => {
    const r = await train(['952', '3d_fullres', '0', '--num_epochs', '2', '--num_iterations_per_epoch', '2', '--num_val_iterations_per_epoch', '1', '--seed', '3'], { ...fx.env });
    assert.equal(r.code, 0, r.err.join('\n'));
    const text = r.out.join('\n');
    assert.match(text, /training nnUNetTrainer__nnUNetPlans__3d_fullres fold 0 on cpu: 8 training \/ 2 validation cases, epochs 1\.\.2 of 2 × 2 iterations/);
    assert.match(text, /epoch 1\/2: train_loss -?\d\.\d{4} {2}val_loss -?\d\.\d{4} {2}pseudo dice \[[^\]]+\] {2}ema \d\.\d{4} {2}lr 0\.01000 {2}\d+\.\d s {2}\(new best\)/);
    assert.match(text, /epoch 2\/2: .* lr 0\.00536 /);
    assert.match(text, /Mean Validation Dice: /);
    const folder = join(fx.results, 'nnUNetTrainer__nnUNetPlans__3d_fullres', 'fold_0');
    assert.ok(existsSync(join(folder, 'validation', 'summary.json')));

    const v = await train(['952', '3d_fullres', '0', '--val', '--npz'], fx.env);
    assert.equal(v.code, 0, v.err.join('\n'));
    assert.ok(!v.out.some((l) => l.startsWith('epoch ')), 'no training epochs with --val');
    assert.ok(existsSync(join(folder, 'validation', 'case_000.npz')), '--npz saves probabilities');
  });
});
