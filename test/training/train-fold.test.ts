// Training folds in their own child process, end to end on a synthetic phantom dataset that our
// planner and preprocessor prepared: the model folder nnU-Net would leave, resuming with --c after
// a kill and after a graceful stop (same epochs, same learning rates), crashes reported as failed
// folds, and a custom trainer module. One fold per test so the tests do not share a model folder.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { torchAvailable } from '../../server/engine/torch.js';
import { loadModelFolder, releaseModel } from '../../server/inference/model-folder.js';
import type { FoldEvent, EpochEvent, StartedEvent } from '../../server/training/events.js';
import { polySchedule } from '../../server/training/lr-schedule.js';
import { startFold, trainFold, type FoldJobOptions } from '../../server/training/run-fold.js';
import { REPO_ROOT, tempDir } from '../helpers.js';
import { makeTrainingFixture, type TrainingFixture } from './fixtures.js';

const MODEL = 'nnUNetTrainer__nnUNetPlans__3d_fullres';
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const round5 = (x: number) => Math.round(x * 1e5) / 1e5;

describe('training/train-fold (child process)', function () {
  // Each test forks a fold process (tsx + libtorch start-up) and trains; the repo default of 60 s is tight on a busy machine.
  this.timeout(240_000);
  let fx: TrainingFixture;
  let cleanup = () => {};

  before(async function () {
    if (!torchAvailable()) {
      console.log('      libtorch is not available (server/native not built): training tests skipped');
      return this.skip();
    }
    const t = tempDir('nnunet-train-');
    cleanup = t.cleanup;
    fx = await makeTrainingFixture(t.dir);
  });
  after(() => cleanup());

  const fold = (fold: number, o: Partial<FoldJobOptions> = {}): FoldJobOptions => ({ dataset: '951', configuration: '3d_fullres', fold, env: fx.env, seed: 1, numThreads: 1, ...o });
  const collect = () => {
    const events: FoldEvent[] = [];
    return { events, onEvent: (e: FoldEvent) => events.push(e), epochs: () => events.filter((e): e is EpochEvent => e.type === 'epoch') };
  };

  it('trains a tiny fold end to end into the model folder nnU-Net would leave', async () => {
    const c = collect();
    const outcome = await trainFold(fold(0, { overrides: { numEpochs: 2, numIterationsPerEpoch: 3, numValIterationsPerEpoch: 2 } }), { onEvent: c.onEvent });
    assert.equal(outcome.status, 'finished', outcome.message);
    const folder = join(fx.results, MODEL, 'fold_0');
    assert.equal(outcome.outputFolder, folder);
    for (const f of ['plans.json', 'dataset.json', 'dataset_fingerprint.json']) assert.ok(existsSync(join(fx.results, MODEL, f)), f);
    for (const f of ['checkpoint_final.safetensors', 'checkpoint_final.json', 'checkpoint_best.json', 'model.onnx', 'progress.png', 'training_log.jsonl', 'debug.json', 'validation/summary.json']) {
      assert.ok(existsSync(join(folder, f)), f);
    }
    assert.ok(!existsSync(join(folder, 'checkpoint_latest.json')), 'checkpoint_latest is removed at the end');
    assert.equal(readdirSync(join(folder, 'validation')).filter((f) => f.endsWith('.nii.gz')).length, 2, 'both validation cases predicted');
    const summary = readJson(join(folder, 'validation', 'summary.json'));
    assert.equal(typeof summary.foreground_mean.Dice, 'number');
    assert.equal(outcome.meanValidationDice, summary.foreground_mean.Dice);

    const final = readJson(join(folder, 'checkpoint_final.json'));
    assert.equal(final.current_epoch, 2);
    assert.deepEqual(final.logging.lrs.map(round5), [0.01, 0.00536]);
    assert.equal(final.trainer_name, 'nnUNetTrainer');
    assert.deepEqual(final.inference_allowed_mirroring_axes, [0, 1, 2]);

    assert.deepEqual(c.events.filter((e) => e.type !== 'log' && e.type !== 'iteration' && e.type !== 'checkpoint' && e.type !== 'validation').map((e) => e.type), ['started', 'epoch', 'epoch', 'finished']);
    const started = c.events[c.events.findIndex((e) => e.type === 'started')] as StartedEvent;
    assert.deepEqual([started.trainCases, started.valCases, started.startEpoch], [8, 2, 0]);
    const e0 = c.epochs()[0];
    assert.equal(e0.lr, 0.01);
    assert.equal(e0.pseudo_dice.length, 1);
    assert.ok(e0.epoch_time > 0);
    assert.equal(e0.new_best, true);

    const text = readdirSync(folder).find((f) => /^training_log_\d+_\d+_\d+_\d\d_\d\d_\d\d\.txt$/.test(f));
    assert.ok(text, 'the readable log');
    const log = readFileSync(join(folder, text), 'utf8');
    for (const line of ['Epoch 1', 'Current learning rate: 0.00536', 'train_loss ', 'Pseudo dice [', 'Yayy! New best EMA pseudo Dice:', 'Mean Validation Dice:']) assert.ok(log.includes(line), line);
    const records = readFileSync(join(folder, 'training_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(records.filter((r) => r.type === 'epoch').map((r) => r.epoch), [0, 1]);

    const png = readFileSync(join(folder, 'progress.png'));
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [3000, 5400]);
    assert.equal(readJson(join(folder, 'debug.json')).num_epochs, '2');

    // The predictor loads the fold from what training wrote, without converting again.
    const model = await loadModelFolder(join(fx.results, MODEL), { folds: ['0'] });
    try {
      assert.deepEqual(model.folds[0].mirrorAxes, [0, 1, 2]);
    } finally {
      await releaseModel(model);
    }
  });

  let reference: number[] = [];

  it('lowers the training loss on an easy phantom over a slightly longer run', async () => {
    const c = collect();
    const outcome = await trainFold(fold(1, { overrides: { numEpochs: 3, numIterationsPerEpoch: 8, numValIterationsPerEpoch: 1 } }), { onEvent: c.onEvent });
    assert.equal(outcome.status, 'finished', outcome.message);
    const losses = c.epochs().map((e) => e.train_loss);
    assert.equal(losses.length, 3);
    assert.ok(losses[2] < losses[0] - 0.05, `train loss ${losses.map((l) => l.toFixed(3)).join(' → ')} should fall`);
    reference = readJson(join(fx.results, MODEL, 'fold_1', 'checkpoint_final.json')).logging.lrs;
  });

  it('continues with --c after the process is killed: same epoch count and learning rates as an uninterrupted run', async () => {
    const overrides = { numEpochs: 3, numIterationsPerEpoch: 2, numValIterationsPerEpoch: 1, saveEvery: 1 };
    const run = startFold(fold(2, { overrides }), {
      onEvent: (e) => {
        // Killed right after epoch 1's checkpoint_latest: epoch 2 has begun or is about to.
        if (e.type === 'checkpoint' && e.kind === 'latest' && e.epoch === 2) run.cancel();
      },
    });
    const killed = await run.done;
    assert.equal(killed.status, 'cancelled');
    assert.equal(killed.signal, 'SIGKILL');
    const folder = join(fx.results, MODEL, 'fold_2');
    assert.ok(!existsSync(join(folder, 'checkpoint_final.json')));
    assert.equal(readJson(join(folder, 'checkpoint_latest.json')).current_epoch, 2);

    const c = collect();
    const resumed = await trainFold(fold(2, { overrides, continueTraining: true }), { onEvent: c.onEvent });
    assert.equal(resumed.status, 'finished', resumed.message);
    const started = c.events.find((e): e is StartedEvent => e.type === 'started');
    assert.equal(started?.startEpoch, 2);
    assert.match(String(started?.resumedFrom), /checkpoint_latest$/);
    assert.deepEqual(c.epochs().map((e) => e.epoch), [2]);
    const final = readJson(join(folder, 'checkpoint_final.json'));
    assert.equal(final.current_epoch, 3);
    assert.equal(final.logging.train_losses.length, 3);
    assert.deepEqual(final.logging.lrs, reference.length ? reference : polySchedule({ initialLr: 0.01, numEpochs: 3, exponent: 0.9 }));
    assert.deepEqual(final.logging.lrs.map(round5), [0.01, 0.00694, 0.00372]);
  });

  it('stops gracefully on SIGTERM after the current iteration, and --c repeats the unfinished epoch', async () => {
    // Enough iterations that the stop lands inside epoch 1, however slowly the parent reacts.
    const overrides = { numEpochs: 3, numIterationsPerEpoch: 20, numValIterationsPerEpoch: 1 };
    let iterationsSeen = 0;
    const run = startFold(fold(3, { overrides }), {
      onEvent: (e) => {
        if (e.type === 'iteration' && e.epoch === 1 && e.phase === 'train' && ++iterationsSeen === 1) run.stop();
      },
    });
    const stopped = await run.done;
    assert.equal(stopped.status, 'stopped', stopped.message);
    assert.equal(stopped.exitCode, 0);
    const folder = join(fx.results, MODEL, 'fold_3');
    const latest = readJson(join(folder, 'checkpoint_latest.json'));
    assert.equal(latest.current_epoch, 1, 'the unfinished epoch is the next to run');
    assert.deepEqual(latest.logging.lrs, [0.01], 'no half-logged epoch');
    assert.ok(!readFileSync(join(folder, 'training_log.jsonl'), 'utf8').includes('"epoch":1,"train_loss"'), 'epoch 1 never completed');

    const c = collect();
    const resumed = await trainFold(fold(3, { overrides, continueTraining: true }), { onEvent: c.onEvent });
    assert.equal(resumed.status, 'finished', resumed.message);
    assert.deepEqual(c.epochs().map((e) => [e.epoch, round5(e.lr)]), [
      [1, 0.00694],
      [2, 0.00372],
    ]);
  });

  it('trains a 2d configuration slice by slice and validates it with 2D mirroring', async () => {
    const outcome = await trainFold(fold(0, { configuration: '2d', overrides: { numEpochs: 1, numIterationsPerEpoch: 2, numValIterationsPerEpoch: 1 } }));
    assert.equal(outcome.status, 'finished', outcome.message);
    const folder = join(fx.results, 'nnUNetTrainer__nnUNetPlans__2d', 'fold_0');
    assert.deepEqual(readJson(join(folder, 'checkpoint_final.json')).inference_allowed_mirroring_axes, [0, 1]);
    assert.ok(existsSync(join(folder, 'validation', 'summary.json')));
  });

  it('reports failures as failed folds with their message: bad plans, an unknown trainer, a native crash', async () => {
    const plans = readJson(join(fx.preprocessed, 'nnUNetPlans.json'));
    plans.plans_name = 'BadPlans';
    plans.configurations['3d_fullres'].architecture.arch_kwargs.conv_op = 'torch.nn.modules.conv.Conv4d';
    writeFileSync(join(fx.preprocessed, 'BadPlans.json'), JSON.stringify(plans));
    const bad = await trainFold(fold(0, { plans: 'BadPlans' }));
    assert.equal(bad.status, 'failed');
    assert.equal(bad.exitCode, 1);
    assert.equal(bad.errorName, 'ArchitectureError');
    assert.match(String(bad.message), /conv_op "torch\.nn\.modules\.conv\.Conv4d" is not supported/);

    const unknown = await trainFold(fold(0, { trainer: 'nnUNetTrainerFancy' }));
    assert.equal(unknown.status, 'failed');
    assert.match(String(unknown.message), /trainer 'nnUNetTrainerFancy' is not supported.*nnUNetTrainer_250epochs/s);

    const failedEvents: FoldEvent[] = [];
    const crash = await trainFold(fold(0, { batchSourceModule: join(REPO_ROOT, 'test/training/fake-batch-source.ts'), env: { ...fx.env, FAKE_BATCH_SOURCE_ABORT: '1' } }), {
      onEvent: (e) => e.type === 'failed' && failedEvents.push(e),
    });
    assert.equal(crash.status, 'failed');
    assert.equal(crash.signal, 'SIGABRT');
    assert.match(String(crash.message), /the fold process was killed by signal SIGABRT/);
    assert.equal(failedEvents.length, 1, 'the crash is also reported as an event');
  });

  it('trains with a custom trainer module and a stand-in data pipeline', async () => {
    const outcome = await trainFold(
      fold(0, {
        trainer: join(REPO_ROOT, 'server/training/examples/custom-trainer.ts'),
        batchSourceModule: join(REPO_ROOT, 'test/training/fake-batch-source.ts'),
        overrides: { numEpochs: 1, numIterationsPerEpoch: 2, numValIterationsPerEpoch: 1 },
      }),
    );
    assert.equal(outcome.status, 'finished', outcome.message);
    const folder = join(fx.results, 'nnUNetTrainerHalfWidth__nnUNetPlans__3d_fullres', 'fold_0');
    const final = readJson(join(folder, 'checkpoint_final.json'));
    assert.equal(final.trainer_name, 'nnUNetTrainerHalfWidth');
    assert.deepEqual(final.inference_allowed_mirroring_axes, [], 'the example trains without mirroring');
    assert.ok(existsSync(join(folder, 'model.onnx')));
  });
});
