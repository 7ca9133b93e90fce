// Ctrl-C in `nnunet train` with the embedded server, in a real CLI process: the fold stops after
// the current iteration, checkpoint_latest is written, the command says to continue with --c and
// exits 0 by itself (the embedded server and its job store are gone).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { torchAvailable } from '../../server/engine/torch.js';
import { REPO_ROOT, tempDir } from '../helpers.js';
import { makeTrainingFixture, type TrainingFixture } from '../training/fixtures.js';

describe('nnunet train: Ctrl-C with the embedded server', function () {
  this.timeout(300_000);
  let fx: TrainingFixture;
  let cleanup = () => {};

  before(async function () {
    if (!torchAvailable()) {
      console.log('      libtorch is not available (server/native not built): train interrupt test skipped');
      return this.skip();
    }
    const t = tempDir('nnunet-train-sigint-');
    cleanup = t.cleanup;
    fx = await makeTrainingFixture(t.dir, { id: 954 });
  });
  after(() => cleanup());

  it('stops after the current iteration with checkpoint_latest and exits 0 by itself', async () => {
    const argv = ['954', '3d_fullres', '0', '--num_epochs', '40', '--num_iterations_per_epoch', '2', '--num_val_iterations_per_epoch', '1', '-device', 'cpu'];
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'client', 'cli.ts'), 'train', ...argv], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...fx.env, NNUNET_BUNDLED_MODELS: 'none' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let interrupted = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!interrupted && /^epoch 1\/40: /m.test(out)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(-1);
      }, 240_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.ok(interrupted, `no epoch line seen:\n${out}`);
    assert.equal(code, 0, out);
    assert.match(out, /stopping after the current iteration/);
    assert.match(out, /stopped; checkpoint_latest written, continue with --c/);
    assert.doesNotMatch(out, /^epoch 40\/40/m);
    const fold = join(fx.results, 'nnUNetTrainer__nnUNetPlans__3d_fullres', 'fold_0');
    assert.ok(readdirSync(fold).some((f) => f.startsWith('checkpoint_latest')), readdirSync(fold).join(', '));
    assert.ok(!readdirSync(fold).some((f) => f.startsWith('checkpoint_final')));
    assert.ok(existsSync(fold));
  });
});
