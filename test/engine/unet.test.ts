// Specification of the U-Nets against nnU-Net v2 itself: the real fixture checkpoint's keys and
// shapes (and loading its weights), the observed 6-stage key list, REFERENCE §6.1's parameter
// count and output shapes, ResEnc structure and init, checkpoint import, and a short training run.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { SGD, F, cat, noGrad, tensor, tidy, torchAvailable, type Tensor } from '../../server/engine/torch.js';
import { ArchitectureError, buildNetwork, buildNetworkFromPlans, loadNnunetCheckpointIntoNetwork, ResidualEncoderUNet } from '../../server/engine/networks/index.js';
import { exportOnnx } from '../../server/engine/onnx/index.js';
import { parsePlans } from '../../server/planning/plans.js';
import { tempDir } from '../helpers.js';
import { architecture, fixtureCheckpoint, fixturePlans, fixtureWeights, maxAbsDiff, MODEL_ZIP, OBSERVED, runOnnx } from './unet-fixtures.js';

const available = torchAvailable();
if (!available) console.warn('engine/networks libtorch tests skipped: libtorch binding not built (install libtorch-dev, run node scripts/build-native.mjs)');
const withTorch = available ? it : it.skip;

const listing = (pairs: [string, { shape: readonly number[] }][]) => pairs.map(([k, p]) => `${k} [${p.shape.join(', ')}]`);

describe('engine/networks U-Nets', () => {
  describe('PlainConvUNet against nnU-Net v2', () => {
    it("has exactly the fixture checkpoint's keys, shapes and key order (all 188 with nnU-Net's duplicates)", () => {
      const net = buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { initialize: false });
      const weights = fixtureWeights();
      const expected = listing([...weights.entries()]);
      assert.deepEqual(listing(net.namedParameters('', { aliases: true })), expected);
      const canonical = expected.filter((k) => !k.includes('all_modules') && !k.startsWith('decoder.encoder.'));
      assert.equal(canonical.length, 68);
      assert.deepEqual(listing(net.namedParameters()), canonical);
    });

    it("loads the fixture's weights strictly (duplicates ignored) and stateDict gives them back", () => {
      const net = buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { initialize: false });
      const weights = fixtureWeights();
      const report = net.loadStateDict(weights);
      assert.equal(report.loaded.length, 68);
      assert.equal(report.ignoredAliases.length, 120);
      for (const [key, t] of net.stateDict({ aliases: true })) assert.deepEqual(t.data, weights.get(key)!.toFloat32(), key);
    });

    it('matches the observed 6-stage 3D key list (292 keys, order and shapes)', () => {
      const lines = readFileSync(join(OBSERVED, 'v2_plainconvunet_6stage_state_dict_keys.txt'), 'utf8').split('\n');
      const expected = lines.flatMap((l) => {
        const m = /^(\S+) \(([\d, ]*)\)$/.exec(l.trim());
        return m ? [`${m[1]} [${m[2].split(',').map((s) => s.trim()).filter(Boolean).join(', ')}]`] : [];
      });
      assert.equal(expected.length, Number(lines[0]));
      const arch = architecture({ features: [32, 64, 128, 256, 320, 320], kernels: Array(6).fill([3, 3, 3]), strides: [[1, 1, 1], ...Array(5).fill([2, 2, 2])] });
      const net = buildNetwork(arch, 1, 3, { initialize: false });
      assert.deepEqual(listing(net.namedParameters('', { aliases: true })), expected);
    });

    it("has REFERENCE §6.1's 5 520 681 parameters for the tiny plan (4 stages, K = 3)", () => {
      const tiny = parsePlans(JSON.parse(readFileSync(join(OBSERVED, 'tiny_nnUNetPlans.json'), 'utf8')));
      const net = buildNetworkFromPlans(tiny, '3d_fullres', 1, 3, { initialize: false });
      assert.equal(net.numParameters(), 5_520_681);
      const transp = net.decoder.transpconvs.items.map((t) => `${t.inChannels}->${t.outChannels} k(${t.kernel.join(',')})`);
      assert.deepEqual(transp, ['256->128 k(2,2,2)', '128->64 k(2,2,2)', '64->32 k(1,2,2)']);
      assert.deepEqual(net.spatialDivisor, [4, 8, 8]);
    });

    withTorch("gives REFERENCE §6.1's deep-supervision output shapes for the tiny plan's patch", () => {
      const tiny = parsePlans(JSON.parse(readFileSync(join(OBSERVED, 'tiny_nnUNetPlans.json'), 'utf8')));
      const net = buildNetworkFromPlans(tiny, '3d_fullres', 1, 3, { deepSupervision: true, seed: 1 });
      tidy(() => {
        const out = noGrad(() => net.forward(tensor(new Float32Array(24 * 64 * 56), [1, 1, 24, 64, 56]))) as Tensor[];
        assert.deepEqual(out.map((o) => o.shape), [[1, 3, 24, 64, 56], [1, 3, 24, 32, 28], [1, 3, 12, 16, 14]]);
        net.deepSupervision = false;
        assert.deepEqual((noGrad(() => net.forward(tensor(new Float32Array(8 * 16 * 16), [1, 1, 8, 16, 16]))) as Tensor).shape, [1, 3, 8, 16, 16]);
      });
      net.release();
    });

    it('is He-initialised as InitWeights_He(1e-2): zero biases, unit norms, reproducible by seed', () => {
      const a = buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { seed: 5 });
      const sd = a.stateDict();
      assert.ok(sd.get('decoder.transpconvs.0.bias')!.data.every((v) => v === 0));
      assert.ok(sd.get('encoder.stages.2.0.convs.1.norm.weight')!.data.every((v) => v === 1));
      const w = sd.get('encoder.stages.3.0.convs.1.conv.weight')!.data; // fan_in 64·27
      const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
      assert.ok(Math.abs(std / (Math.sqrt(2 / 1.0001) / Math.sqrt(64 * 27)) - 1) < 0.03, `std ${std}`);
      assert.deepEqual(buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { seed: 5 }).stateDict(), sd);
    });

    it('refuses architectures it cannot build, saying which keyword', () => {
      const arch = architecture({ features: [4, 8], kernels: [[3, 3], [3, 3]], strides: [[1, 1], [2, 2]] });
      assert.throws(() => buildNetwork({ ...arch, network_class_name: 'my.SwinUNETR' }, 1, 2), /network_class_name my\.SwinUNETR is not supported/);
      assert.throws(() => buildNetwork({ ...arch, arch_kwargs: { ...arch.arch_kwargs, norm_op: 'torch.nn.BatchNorm2d' } }, 1, 2), ArchitectureError);
      assert.throws(() => buildNetwork({ ...arch, arch_kwargs: { ...arch.arch_kwargs, strides: [[1, 1]] } }, 1, 2), /strides must have 2 entries/);
      assert.throws(() => buildNetwork(arch, 0, 2), /input channels/);
    });
  });

  describe('ResidualEncoderUNet', () => {
    const resenc = () =>
      buildNetwork(
        architecture({
          className: 'ResidualEncoderUNet',
          features: [4, 8, 16],
          kernels: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
          strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
          perStage: [1, 2, 2],
        }),
        1,
        3,
        { seed: 2 },
      );

    it('has nnU-Net-style stem, ResNet-D block and skip keys with the right shapes', () => {
      const net = resenc();
      assert.ok(net instanceof ResidualEncoderUNet);
      const keys = listing(net.namedParameters());
      for (const k of [
        'encoder.stem.convs.0.conv.weight [4, 1, 1, 3, 3]',
        'encoder.stem.convs.0.norm.bias [4]',
        'encoder.stages.0.blocks.0.conv1.conv.weight [4, 4, 1, 3, 3]',
        'encoder.stages.0.blocks.0.conv2.norm.weight [4]',
        'encoder.stages.1.blocks.0.conv1.conv.weight [8, 4, 3, 3, 3]',
        'encoder.stages.1.blocks.0.skip.1.conv.weight [8, 4, 1, 1, 1]',
        'encoder.stages.1.blocks.0.skip.1.norm.weight [8]',
        'encoder.stages.2.blocks.1.conv2.conv.weight [16, 16, 3, 3, 3]',
        'decoder.stages.0.convs.0.conv.weight [8, 16, 3, 3, 3]',
        'decoder.transpconvs.0.weight [16, 8, 2, 2, 2]',
        'decoder.transpconvs.1.weight [8, 4, 1, 2, 2]',
        'decoder.seg_layers.1.weight [3, 4, 1, 1, 1]',
      ]) {
        assert.ok(keys.includes(k), k);
      }
      // the 1×1 projection has no bias; the avg-pool (skip.0) has no parameters; unstrided same-width blocks have no skip
      assert.ok(!keys.some((k) => /skip\.1\.conv\.bias|skip\.0\.|stages\.0\.blocks\.0\.skip|blocks\.1\.skip/.test(k)), keys.join('\n'));
      assert.equal(keys.filter((k) => k.startsWith('decoder.stages.')).length, 2 * 4, 'one conv block per decoder stage');
      const all = net.namedParameters('', { aliases: true }).map(([k]) => k);
      assert.ok(all.includes('decoder.encoder.stem.convs.0.all_modules.0.weight'));
      assert.ok(all.includes('encoder.stages.1.blocks.0.skip.1.all_modules.1.weight'));
    });

    it('zeroes the last norm of every residual block (init_last_bn_before_add_to_0)', () => {
      const sd = resenc().stateDict();
      for (const [k, t] of sd) if (/conv2\.norm\.(weight|bias)$/.test(k)) assert.ok(t.data.every((v) => v === 0), k);
      assert.ok(sd.get('encoder.stages.1.blocks.0.conv1.norm.weight')!.data.every((v) => v === 1));
    });
  });

  describe('nnU-Net v2 checkpoint import', () => {
    it('builds from the checkpoint’s own plans and configuration, loads the weights, returns trainer and mirroring axes', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const entries = unzipSync(readFileSync(MODEL_ZIP), { filter: (f) => f.name.endsWith('checkpoint_final.pth') });
        const path = join(dir, 'checkpoint_final.pth');
        writeFileSync(path, Object.values(entries)[0]);
        const model = await loadNnunetCheckpointIntoNetwork(path);
        assert.equal(model.trainerName, 'nnUNetTrainer_RefSmall');
        assert.equal(model.configuration, '3d_fullres');
        assert.deepEqual(model.inferenceAllowedMirroringAxes, [0, 1, 2]);
        assert.equal(model.fold, 0);
        assert.deepEqual([model.inputChannels, model.numClasses], [1, 3]);
        assert.equal(model.report.loaded.length, 68);
        assert.equal(model.network.deepSupervision, false);
        const weights = fixtureWeights();
        assert.deepEqual(model.network.stateDict().get('decoder.seg_layers.2.weight')!.data, weights.get('decoder.seg_layers.2.weight')!.toFloat32());
      } finally {
        cleanup();
      }
    });

    it('refuses a configuration whose network does not fit the weights, naming the keys', async () => {
      await assert.rejects(loadNnunetCheckpointIntoNetwork(fixtureCheckpoint(), { configuration: '2d' }), /shape mismatch encoder\.stages\.0\.0\.convs\.0\.conv\.weight: network \[32, 1, 3, 3\], weights \[8, 1, 3, 3, 3\]/);
    });
  });

  describe('training on libtorch', () => {
    /** Two 16³ phantoms: a bright sphere (label 1) and a dark box (label 2) in noise. */
    function phantomBatch(): { image: Float32Array; labels: BigInt64Array } {
      const n = 16;
      const image = new Float32Array(2 * n ** 3);
      const labels = new BigInt64Array(2 * n ** 3);
      let seed = 12345;
      const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.6;
      for (let b = 0; b < 2; b++) {
        const c = b === 0 ? [8, 8, 8] : [6, 9, 7];
        for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
          const i = ((b * n + z) * n + y) * n + x;
          const sphere = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 16;
          const box = z >= 11 && y < 5 && x < 6 + b;
          labels[i] = BigInt(sphere ? 1 : box ? 2 : 0);
          image[i] = (sphere ? 1 : box ? -1 : 0) + noise();
        }
      }
      return { image, labels };
    }

    withTorch('a 3D PlainConvUNet learns a phantom with deep-supervised CE and SGD; its ONNX export then matches libtorch', async function () {
      this.timeout(300000);
      const arch = architecture({ features: [4, 8, 16], kernels: [[3, 3, 3], [3, 3, 3], [3, 3, 3]], strides: [[1, 1, 1], [2, 2, 2], [2, 2, 2]] });
      const net = buildNetwork(arch, 1, 3, { deepSupervision: true, seed: 3 }).materialize();
      const { image, labels } = phantomBatch();
      const optimizer = new SGD(net.parameterTensors(), { lr: 0.01, momentum: 0.99, nesterov: true, weightDecay: 3e-5 });
      const weights = [2 / 3, 1 / 3, 0]; // nnU-Net's DS weights for 3 outputs (REFERENCE §5.4)
      const losses: number[] = [];
      for (let step = 0; step < 20; step++) {
        losses.push(
          tidy(() => {
            const x = tensor(image, [2, 1, 16, 16, 16]);
            const target = tensor(labels, [2, 16, 16, 16]);
            const outputs = net.forward(x) as Tensor[];
            const terms = outputs.map((o, i) => {
              const stride = 2 ** i;
              const t = target.slice(1, 0, undefined, stride).slice(2, 0, undefined, stride).slice(3, 0, undefined, stride).contiguous();
              return F.crossEntropy(o, t).mul(weights[i]).reshape([1]);
            });
            const loss = cat(terms).sum();
            optimizer.zeroGrad();
            loss.backward();
            optimizer.step();
            return loss.item();
          }),
        );
      }
      optimizer.dispose();
      assert.ok(losses.every(Number.isFinite), losses.join(', '));
      assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `loss should fall: ${losses.map((l) => l.toFixed(3)).join(', ')}`);

      const input = image.slice(0, 16 ** 3);
      const torchLogits = tidy(() => noGrad(() => net.predictLogits(tensor(input, [1, 1, 16, 16, 16])).toFloat32Array()));
      const onnx = await runOnnx(exportOnnx(net), input, [1, 1, 16, 16, 16]);
      assert.deepEqual(onnx.dims, [1, 3, 16, 16, 16]);
      const diff = maxAbsDiff(torchLogits, onnx.data);
      assert.ok(diff < 1e-4, `max |libtorch − onnxruntime| = ${diff}`);
      if (process.env.NNUNET_PRINT_PARITY) console.log(`trained: losses ${losses.map((l) => l.toFixed(3)).join(' ')}; parity ${diff}`);
      net.release();
    });
  });
});
