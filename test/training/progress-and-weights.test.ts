// progress.png (a real PNG of nnU-Net's 3000×5400 size with its three panels) and
// -pretrained_weights (every non-head key must fit; heads keep their initialisation). Neither needs
// libtorch: the plot is vega + resvg, the weights live as arrays until training materialises them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveCheckpoint } from '../../server/engine/checkpoint.js';
import { buildNetwork } from '../../server/engine/networks/from-plans.js';
import type { Architecture } from '../../server/planning/plans.js';
import { progressSpec, progressSvg, writeProgressPng } from '../../server/training/progress-plot.js';
import { loadPretrainedWeights, PretrainedWeightsError } from '../../server/training/pretrained.js';
import { emptyLogLists } from '../../server/training/progress-log.js';
import { tempDir } from '../helpers.js';

/** Width and height from the IHDR chunk, after checking the PNG signature. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(bytes.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function threeEpochLog() {
  const log = emptyLogLists();
  log.train_losses = [1.17, 0.8, 0.57];
  log.val_losses = [0.92, 0.63, 0.47];
  log.mean_fg_dice = [0.07, NaN, 0.21];
  log.ema_fg_dice = [0.07, 0.07, 0.084];
  log.lrs = [0.01, 0.00694, 0.00372];
  log.epoch_start_timestamps = [0, 30, 60];
  log.epoch_end_timestamps = [22.5, 53.7, 83];
  log.dice_per_class_or_region = [[0.07], [NaN], [0.21]];
  return log;
}

describe('training/progress-plot', () => {
  it('writes a 3000×5400 PNG', async () => {
    const { dir, cleanup } = tempDir('nnunet-progress-');
    try {
      const file = join(dir, 'progress.png');
      await writeProgressPng(file, threeEpochLog());
      assert.deepEqual(pngSize(readFileSync(file)), { width: 3000, height: 5400 });
    } finally {
      cleanup();
    }
  });

  it("has nnU-Net's three panels: losses with pseudo Dice on a twin axis, epoch duration from 0, learning rate", async () => {
    const spec = progressSpec(threeEpochLog()) as unknown as { vconcat: Record<string, unknown>[] };
    assert.equal(spec.vconcat.length, 3);
    const svg = await progressSvg(threeEpochLog());
    for (const label of ['loss_tr', 'loss_val', 'pseudo dice', 'pseudo dice (mov. avg.)', 'epoch duration', 'learning rate', 'time [s]']) {
      assert.ok(svg.includes(`>${label}<`), `label "${label}"`);
    }
    assert.equal(svg.match(/>epoch</g)?.length, 3, 'x label "epoch" on every panel');
    assert.equal(svg.match(/>loss</g)?.length, 1);
    assert.match(svg, /^<svg[^>]* width="3000" height="5400"/);
    const duration = spec.vconcat[1] as { encoding: { y: { scale: { zero: boolean } } } };
    assert.equal(duration.encoding.y.scale.zero, true);
  });
});

const ARCH: Architecture = {
  network_class_name: 'dynamic_network_architectures.architectures.unet.PlainConvUNet',
  arch_kwargs: {
    n_stages: 3,
    features_per_stage: [4, 8, 16],
    conv_op: 'torch.nn.modules.conv.Conv3d',
    kernel_sizes: [[3, 3, 3], [3, 3, 3], [3, 3, 3]],
    strides: [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
    n_conv_per_stage: [2, 2, 2],
    n_conv_per_stage_decoder: [2, 2],
    conv_bias: true,
    norm_op: 'torch.nn.modules.instancenorm.InstanceNorm3d',
    norm_op_kwargs: { eps: 1e-5, affine: true },
    dropout_op: null,
    dropout_op_kwargs: null,
    nonlin: 'torch.nn.LeakyReLU',
    nonlin_kwargs: { inplace: true },
  },
  _kw_requires_import: ['conv_op', 'norm_op', 'dropout_op', 'nonlin'],
};

describe('training/pretrained', () => {
  const trainerState = {
    current_epoch: 3,
    logging: emptyLogLists(),
    _best_ema: null,
    configuration: '3d_fullres',
    fold: 0,
    plans_name: 'nnUNetPlans',
    trainer_name: 'nnUNetTrainer',
    inference_allowed_mirroring_axes: [0, 1, 2],
    grad_scaler_state: null,
  };

  it('copies every weight but the segmentation heads from a checkpoint of another task', async () => {
    const { dir, cleanup } = tempDir('nnunet-pretrained-');
    try {
      const source = buildNetwork(ARCH, 1, 5, { seed: 1 });
      await saveCheckpoint(join(dir, 'checkpoint_final'), { weights: source.stateDict(), trainerState });
      const target = buildNetwork(ARCH, 1, 3, { seed: 2 });
      const headBefore = target.stateDict().get('decoder.seg_layers.1.weight')?.data.slice();
      const report = await loadPretrainedWeights(target, join(dir, 'checkpoint_final.safetensors'));
      assert.equal(report.format, 'checkpoint');
      assert.ok(report.loaded.length > 0);
      assert.ok(report.loaded.every((k) => !k.includes('.seg_layers.')));
      assert.deepEqual(report.keptInitialised, ['decoder.seg_layers.0.weight', 'decoder.seg_layers.0.bias', 'decoder.seg_layers.1.weight', 'decoder.seg_layers.1.bias']);
      const after = target.stateDict();
      const src = source.stateDict();
      assert.deepEqual(after.get('encoder.stages.1.0.convs.0.conv.weight')?.data, src.get('encoder.stages.1.0.convs.0.conv.weight')?.data);
      assert.deepEqual(after.get('decoder.seg_layers.1.weight')?.data, headBefore);
    } finally {
      cleanup();
    }
  });

  it('reports every key that does not fit, and loads nothing', async () => {
    const { dir, cleanup } = tempDir('nnunet-pretrained-');
    try {
      const wider = structuredClone(ARCH);
      wider.arch_kwargs.features_per_stage = [4, 8, 32];
      await saveCheckpoint(join(dir, 'ck'), { weights: buildNetwork(wider, 1, 3, { seed: 1 }).stateDict(), trainerState });
      const target = buildNetwork(ARCH, 1, 3, { seed: 2 });
      const before = target.stateDict().get('encoder.stages.0.0.convs.0.conv.weight')?.data.slice();
      await assert.rejects(loadPretrainedWeights(target, join(dir, 'ck')), (e: Error) => {
        assert.ok(e instanceof PretrainedWeightsError);
        assert.match(e.message, /shape of encoder\.stages\.2\.0\.convs\.0\.conv\.weight: pretrained \[32, 8, 3, 3, 3\], this network \[16, 8, 3, 3, 3\]/);
        assert.ok((e as PretrainedWeightsError).problems.length > 3, 'every mismatch, not just the first');
        return true;
      });
      assert.deepEqual(target.stateDict().get('encoder.stages.0.0.convs.0.conv.weight')?.data, before);
    } finally {
      cleanup();
    }
  });
});
