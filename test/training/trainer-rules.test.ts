// The trainer's rules as specifications: nnU-Net's poly learning rate, checkpoint rules, the EMA of
// the pseudo Dice, hyper-parameter defaults and variants, the rotation/mirroring set-up, debug.json
// keys and log formats. No libtorch needed except where a test says so.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { polyLr, polySchedule } from '../../server/training/lr-schedule.js';
import { checkpointsAfterEpoch } from '../../server/training/checkpoint-rules.js';
import { dicePerClass, emaUpdate, hardCounts, nanmean, sumCounts } from '../../server/training/pseudo-dice.js';
import { ProgressLog } from '../../server/training/progress-log.js';
import { DEFAULT_TRAINER_OPTIONS, effectiveOversamplingProbability, resolveTrainerOptions, TrainerOptionsError } from '../../server/training/trainer-options.js';
import { supportedTrainerNames, trainerVariant, UnknownTrainerError, variantOptions } from '../../server/training/variants.js';
import { resolveTrainer } from '../../server/training/custom-trainer.js';
import { augmentationGeometry, initialPatchSize } from '../../server/training/rotation-config.js';
import { debugInfo, pyRepr, PyTuple } from '../../server/training/debug-json.js';
import { pyRound, pythonTimestamp, textLogName } from '../../server/training/logging.js';
import { tensor, torchAvailable } from '../../server/engine/torch.js';
import { REPO_ROOT, SHARED } from '../helpers.js';

const round5 = (x: number) => Math.round(x * 1e5) / 1e5;
const deg = (d: number) => (d / 180) * Math.PI;

describe('training/lr-schedule', () => {
  it('gives 0.01, 0.00694, 0.00372 for 3 epochs (poly 0.9, set at the start of each epoch)', () => {
    assert.deepEqual(polySchedule({ initialLr: 0.01, numEpochs: 3, exponent: 0.9 }).map(round5), [0.01, 0.00694, 0.00372]);
  });

  it("matches nnU-Net's 1000-epoch values at epochs 500 and 999", () => {
    const s = { initialLr: 0.01, numEpochs: 1000, exponent: 0.9 };
    assert.equal(round5(polyLr(500, s)), 0.00536);
    assert.ok(Math.abs(polyLr(999, s) - 1.99e-5) < 1e-7);
    assert.equal(polyLr(1200, s), 0, 'past the end the rate holds at 0');
  });
});

describe('training/checkpoint-rules', () => {
  it('writes checkpoint_latest every save_every epochs, except at the last epoch', () => {
    const latest = (e: number, n = 1000, every = 50) => checkpointsAfterEpoch(e, n, every, 0, 1).latest;
    assert.deepEqual([48, 49, 50, 99].map((e) => latest(e)), [false, true, false, true]);
    assert.equal(latest(999), false, 'the final checkpoint follows the last epoch');
    assert.deepEqual([0, 1, 2].map((e) => latest(e, 3, 1)), [true, true, false]);
  });

  it('writes checkpoint_best at the first epoch and whenever the EMA beats the best so far', () => {
    const best = (ema: number, bestEma: number | null) => checkpointsAfterEpoch(3, 10, 50, ema, bestEma).best;
    assert.equal(best(0.1, null), true);
    assert.equal(best(0.3, 0.2), true);
    assert.equal(best(0.2, 0.2), false, 'equal is not better');
    assert.equal(best(0.1, 0.2), false);
    assert.equal(best(NaN, 0.2), false, 'a NaN EMA never wins');
  });
});

describe('training/pseudo-dice', () => {
  it('computes Dice per class from summed hard counts, NaN for a class that never occurs', () => {
    const counts = sumCounts([
      { tp: [2, 0], fp: [1, 0], fn: [0, 0] },
      { tp: [0, 0], fp: [0, 0], fn: [1, 0] },
    ]);
    assert.deepEqual(counts, { tp: [2, 0], fp: [1, 0], fn: [1, 0] });
    const dice = dicePerClass(counts);
    assert.equal(dice[0], 4 / 6);
    assert.ok(Number.isNaN(dice[1]));
    assert.equal(nanmean(dice), 4 / 6);
    assert.ok(Number.isNaN(nanmean([NaN])));
  });

  it('keeps an EMA with ema_0 = dice_0 and ema_t = 0.9·ema_{t−1} + 0.1·dice_t', () => {
    assert.equal(emaUpdate(undefined, 0.2), 0.2);
    assert.ok(Math.abs(emaUpdate(0.2, 0.4) - 0.22) < 1e-12);
    const log = new ProgressLog();
    [0.2, 0.4, 0.6].forEach((d, e) => log.log('mean_fg_dice', d, e));
    const expected = [0.2, 0.22, 0.9 * 0.22 + 0.06];
    log.lists.ema_fg_dice.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-12));
  });

  it('logs one value per epoch, overwrites a repeated epoch, refuses a gap, truncates for a resume', () => {
    const log = new ProgressLog();
    log.log('lrs', 0.01, 0);
    log.log('lrs', 0.02, 0);
    assert.deepEqual(log.lists.lrs, [0.02]);
    assert.throws(() => log.log('lrs', 0.01, 2), /cannot log epoch 2/);
    log.log('train_losses', 1, 0);
    log.truncate(0);
    assert.deepEqual(log.lists.lrs, []);
  });

  it('counts hard TP/FP/FN on the full-resolution output without background, honouring the ignore label', function () {
    if (!torchAvailable()) return this.skip();
    // 1 batch, 3 classes, 4 voxels: argmax → [0, 1, 2, 1]; target [0, 1, 1, 3(ignore)].
    const logits = tensor([5, 0, 0, 0, 0, 5, 0, 5, 0, 0, 5, 0], [1, 3, 4]).reshape([1, 3, 4]);
    const target = tensor([0, 1, 1, 3], [1, 1, 4]);
    const c = hardCounts(logits, target, { hasRegions: false, ignoreLabel: 3 });
    assert.deepEqual(c, { tp: [1, 0], fp: [0, 1], fn: [1, 0] });
    const regions = hardCounts(tensor([5, -5, 5, -5], [1, 1, 4]), tensor([1, 1, 0, 0], [1, 1, 4]), { hasRegions: true });
    assert.deepEqual(regions, { tp: [1], fp: [1], fn: [1] });
  });
});

describe('training/trainer-options and variants', () => {
  it("defaults to nnU-Net's hyper-parameters", () => {
    const o = resolveTrainerOptions();
    assert.equal(o.numEpochs, 1000);
    assert.equal(o.numIterationsPerEpoch, 250);
    assert.equal(o.numValIterationsPerEpoch, 50);
    assert.equal(o.initialLr, 1e-2);
    assert.equal(o.lrExponent, 0.9);
    assert.equal(o.momentum, 0.99);
    assert.equal(o.nesterov, true);
    assert.equal(o.weightDecay, 3e-5);
    assert.equal(o.gradClipNorm, 12);
    assert.equal(o.oversampleForegroundPercent, 0.33);
    assert.equal(o.saveEvery, 50);
    assert.deepEqual(o, { ...DEFAULT_TRAINER_OPTIONS });
  });

  it('refuses unknown keys and bad values with the key named', () => {
    assert.throws(() => resolveTrainerOptions({ numEpoch: 3 } as never), (e: Error) => e instanceof TrainerOptionsError && /unknown trainer option 'numEpoch'/.test(e.message));
    assert.throws(() => resolveTrainerOptions({ numEpochs: 0 }), /numEpochs must be a positive integer/);
    assert.throws(() => resolveTrainerOptions({ loss: 'focal' as never }), /loss must be one of/);
  });

  it("knows nnU-Net's trainer names and lists them when one is unknown", () => {
    const names = supportedTrainerNames();
    for (const n of [
      'nnUNetTrainer',
      'nnUNetTrainer_1epoch',
      'nnUNetTrainer_5epochs',
      'nnUNetTrainer_250epochs',
      'nnUNetTrainer_8000epochs',
      'nnUNetTrainerNoMirroring',
      'nnUNetTrainerCELoss',
      'nnUNetTrainerDiceLoss',
      'nnUNetTrainer_probabilisticOversampling',
    ]) {
      assert.ok(names.includes(n), n);
    }
    const ctx = { batchSize: 2, patchSize: [16, 16, 16] };
    assert.equal(resolveTrainerOptions(variantOptions(trainerVariant('nnUNetTrainer_250epochs').options, ctx)).numEpochs, 250);
    assert.equal(resolveTrainerOptions(variantOptions(trainerVariant('nnUNetTrainerCELoss').options, ctx)).loss, 'ce');
    const prob = resolveTrainerOptions(variantOptions(trainerVariant('nnUNetTrainer_probabilisticOversampling').options, ctx));
    assert.equal(prob.probabilisticOversampling, true);
    assert.equal(prob.oversampleForegroundPercent, 0.5, 'batch 2 with 0.33 forces one of two samples');
    assert.equal(effectiveOversamplingProbability(10, 0.33), 0.3);
    assert.throws(
      () => trainerVariant('nnUNetTrainerFancy'),
      (e: Error) => e instanceof UnknownTrainerError && /nnUNetTrainerFancy/.test(e.message) && /nnUNetTrainer_250epochs/.test(e.message),
    );
  });

  it('loads a trainer module: options over its base variant, command-line overrides over both', async () => {
    const t = await resolveTrainer(join(REPO_ROOT, 'server/training/examples/custom-trainer.ts'), { batchSize: 2, patchSize: [16, 16, 16] }, { numEpochs: 7 });
    assert.equal(t.name, 'nnUNetTrainerHalfWidth');
    assert.equal(t.options.numEpochs, 7);
    assert.equal(t.options.numIterationsPerEpoch, 150);
    assert.equal(t.options.mirroring, 'none');
    assert.equal(typeof t.buildNetwork, 'function');
  });
});

describe('training/rotation-config', () => {
  it("enlarges the initial patch as nnU-Net's get_patch_size (observed values)", () => {
    assert.deepEqual(initialPatchSize([128, 128, 128], [-deg(30), deg(30)]), [205, 205, 205]);
    assert.deepEqual(augmentationGeometry([80, 192, 160]).initialPatchSize, [194, 289, 210]);
    assert.deepEqual(augmentationGeometry([512, 512]).initialPatchSize, [602, 602]);
  });

  it('picks dummy 2D, rotation and mirror axes per the configuration table', () => {
    const iso = augmentationGeometry([128, 128, 128]);
    assert.equal(iso.dummy2d, false);
    assert.deepEqual(iso.rotationRange, [-deg(30), deg(30)]);
    assert.deepEqual(iso.mirrorAxes, [0, 1, 2]);
    assert.deepEqual(iso.inferenceAllowedMirroringAxes, [0, 1, 2]);
    const aniso = augmentationGeometry([20, 224, 224]);
    assert.equal(aniso.dummy2d, true);
    assert.deepEqual(aniso.rotationRange, [-Math.PI, Math.PI]);
    assert.deepEqual(aniso.initialPatchSize, [20, 263, 263]);
    assert.deepEqual(augmentationGeometry([512, 256]).rotationRange, [-deg(15), deg(15)]);
    assert.deepEqual(augmentationGeometry([64, 64], 'only01').mirrorAxes, [0]);
    assert.deepEqual(augmentationGeometry([64, 64, 64], 'none').inferenceAllowedMirroringAxes, []);
  });
});

describe('training/debug-json and logs', () => {
  it("has every key of nnU-Net's debug.json, with Python reprs", () => {
    const observed = JSON.parse(readFileSync(join(SHARED, 'fixtures', 'observed', 'tiny_3d_fold0_debug.json'), 'utf8')) as Record<string, string>;
    const plans = { dataset_name: 'Dataset501_Tiny', configurations: { '3d_fullres': {} } };
    const d = debugInfo({
      trainerName: 'nnUNetTrainer',
      options: resolveTrainerOptions({ numEpochs: 3, numIterationsPerEpoch: 3, numValIterationsPerEpoch: 2 }),
      plans,
      configurationName: '3d_fullres',
      configuration: { batch_size: 2, patch_size: [24, 64, 56], spacing: [2.0, 1.0, 1.0], batch_dice: false },
      datasetJson: { labels: { background: 0 } },
      fold: 0,
      device: 'cpu',
      batchSize: 2,
      numInputChannels: 1,
      geometry: augmentationGeometry([24, 64, 56]),
      isCascaded: false,
      folderWithSegsFromPreviousStage: null,
      outputFolder: '/r/fold_0',
      outputFolderBase: '/r',
      preprocessedFolder: '/p/x',
      preprocessedFolderBase: '/p',
      logFile: '/r/fold_0/log.txt',
      loss: 'DeepSupervisionWrapper(...)',
      networkClass: 'PlainConvUNet',
      dataloaderTrain: '<train>',
      dataloaderVal: '<val>',
      currentEpoch: 0,
      bestEma: null,
      gradScaler: false,
      disableCheckpointing: false,
      torchVersion: '1.13.0',
    });
    const missing = Object.keys(observed).filter((k) => !(k in d));
    assert.deepEqual(missing, []);
    for (const k of ['_best_ema', 'batch_size', 'num_epochs', 'initial_lr', 'weight_decay', 'oversample_foreground_percent', 'inference_allowed_mirroring_axes', 'is_cascaded', 'save_every', 'enable_deep_supervision', 'num_iterations_per_epoch', 'num_val_iterations_per_epoch', 'fold', 'configuration_name', 'device', 'probabilistic_oversampling']) {
      assert.equal(d[k], observed[k], k);
    }
    assert.equal(pyRepr({ a: [1, 2.5], b: null, c: true, d: 'x' }), "{'a': [1, 2.5], 'b': None, 'c': True, 'd': 'x'}");
    assert.equal(pyRepr(new PyTuple([0, 1, 2])), '(0, 1, 2)');
  });

  it("names the text log and prints numbers as nnU-Net's logger does", () => {
    const t = new Date(2026, 10, 26, 8, 5, 3, 7);
    assert.equal(textLogName(t), 'training_log_2026_11_26_08_05_03.txt');
    assert.equal(pythonTimestamp(t), '2026-11-26 08:05:03.007000');
    assert.equal(pyRound(0.006943, 5), '0.00694');
    assert.equal(pyRound(0.01, 5), '0.01');
    assert.equal(pyRound(1, 4), '1.0');
    assert.equal(pyRound(NaN, 4), 'nan');
  });
});
