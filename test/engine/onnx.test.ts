// Specification of the ONNX export: libtorch and onnxruntime give the same logits for the same
// weights (2D, anisotropic 3D, 6-stage 3D, ResEnc, the real nnU-Net fixture model), the graph has
// dynamic batch/spatial sizes, opset 17 and metadata, and export works with libtorch never loaded.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { noGrad, tensor, tidy, torchAvailable } from '../../server/engine/torch.js';
import { buildNetwork, buildNetworkFromPlans, type UNet } from '../../server/engine/networks/index.js';
import { exportOnnx, ONNX_OPSET, writeOnnx } from '../../server/engine/onnx/index.js';
import { REPO_ROOT, tempDir } from '../helpers.js';
import { architecture, fixturePlans, fixtureWeights, maxAbsDiff, randomInput, randomizeWeights, runOnnx, type ArchOptions } from './unet-fixtures.js';

const { onnx } = onnxProto;
const available = torchAvailable();
if (!available) console.warn('engine/onnx parity tests skipped: libtorch binding not built (install libtorch-dev, run node scripts/build-native.mjs)');
const withTorch = available ? it : it.skip;
const TOLERANCE = 1e-4;

/** libtorch logits (eval mode, no grad) for the network's current weights. */
function torchLogits(net: UNet, x: Float32Array, shape: number[]): Float32Array {
  net.eval();
  try {
    return tidy(() => noGrad(() => net.predictLogits(tensor(x, shape)).toFloat32Array()));
  } finally {
    net.release();
  }
}

async function parity(net: UNet, shape: number[]): Promise<number> {
  const x = randomInput(shape);
  const expected = torchLogits(net, x, shape);
  const got = await runOnnx(exportOnnx(net), x, shape);
  assert.deepEqual(got.dims, [shape[0], net.numClasses, ...shape.slice(2)]);
  const diff = maxAbsDiff(expected, got.data);
  if (process.env.NNUNET_PRINT_PARITY) console.log(`      parity ${shape.join('x')}: ${diff.toExponential(2)} (|logits| max ${Math.max(...expected.map(Math.abs)).toFixed(2)})`);
  return diff;
}

function randomNet(o: ArchOptions, inputChannels: number, numClasses: number, seed: number): UNet {
  const net = buildNetwork(architecture(o), inputChannels, numClasses, { initialize: false });
  randomizeWeights(net, seed);
  return net;
}

describe('engine/onnx export', () => {
  describe('parity with libtorch (max |Δlogit| < 1e-4)', () => {
    withTorch('2D PlainConvUNet, 4 stages, 2 input channels, batch 2', async () => {
      const net = randomNet({ features: [4, 8, 16, 32], kernels: Array(4).fill([3, 3]), strides: [[1, 1], [2, 2], [2, 2], [2, 2]] }, 2, 3, 11);
      assert.ok((await parity(net, [2, 2, 32, 24])) < TOLERANCE);
    });

    withTorch('anisotropic 3D PlainConvUNet (1×3×3 kernel, 1×2×2 stride) with a Dropout3d plan in eval mode', async () => {
      const o: ArchOptions = {
        features: [4, 8, 16],
        kernels: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
        strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
        perStage: [2, 1, 2],
        decoder: [1, 2],
        dropout: { op: 'torch.nn.modules.dropout.Dropout3d', p: 0.2 },
      };
      const net = randomNet(o, 1, 2, 12);
      assert.ok((await parity(net, [1, 1, 6, 16, 12])) < TOLERANCE);
    });

    withTorch('6-stage 3D PlainConvUNet', async () => {
      const net = randomNet({ features: [2, 4, 4, 8, 8, 8], kernels: Array(6).fill([3, 3, 3]), strides: [[1, 1, 1], ...Array(5).fill([2, 2, 2])] }, 1, 3, 13);
      assert.ok((await parity(net, [1, 1, 32, 32, 32])) < TOLERANCE);
    });

    withTorch('3D ResidualEncoderUNet (strided and projecting skips)', async () => {
      const o: ArchOptions = {
        className: 'ResidualEncoderUNet',
        features: [4, 8, 16],
        kernels: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
        strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
        perStage: [1, 2, 2],
      };
      const net = randomNet(o, 2, 3, 14);
      assert.ok((await parity(net, [1, 2, 4, 16, 16])) < TOLERANCE);
    });

    withTorch('2D ResidualEncoderUNet', async () => {
      const o: ArchOptions = { className: 'ResidualEncoderUNet', features: [4, 8, 8, 16], kernels: Array(4).fill([3, 3]), strides: [[1, 1], [2, 2], [2, 2], [2, 2]], perStage: [1, 1, 2, 2] };
      assert.ok((await parity(randomNet(o, 1, 2, 15), [1, 1, 24, 16])) < TOLERANCE);
    });

    withTorch('the real nnU-Net v2 fixture model with its trained weights', async () => {
      const net = buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { initialize: false });
      net.loadStateDict(fixtureWeights());
      assert.ok((await parity(net, [2, 1, 16, 24, 16])) < TOLERANCE);
    });
  });

  it('declares opset 17, dynamic batch and spatial sizes, initializers named by state-dict key, and metadata', () => {
    const net = buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { seed: 1 });
    const model = onnx.ModelProto.decode(exportOnnx(net, { metadata: { trainer: 'nnUNetTrainer' } }));
    assert.equal(Number(model.opsetImport[0].version), ONNX_OPSET);
    assert.ok(ONNX_OPSET >= 17);
    assert.equal(model.producerName, 'nnunet-server');
    const dims = (v: onnxProto.onnx.IValueInfoProto) => v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    assert.deepEqual(dims(model.graph!.input![0]), ['batch', 1, 'spatial_0', 'spatial_1', 'spatial_2']);
    assert.deepEqual(dims(model.graph!.output![0]), ['batch', 3, 'spatial_0', 'spatial_1', 'spatial_2']);
    const inits = model.graph!.initializer!.map((t) => t.name);
    assert.equal(inits.length, 68 - 4, 'every parameter except the three unused deep-supervision heads');
    assert.ok(inits.includes('encoder.stages.0.0.convs.0.conv.weight') && inits.includes('decoder.seg_layers.2.weight'));
    assert.ok(!inits.includes('decoder.seg_layers.0.weight'), 'the inference graph has no deep-supervision heads');
    const meta = Object.fromEntries(model.metadataProps!.map((p) => [p.key, p.value]));
    assert.equal(meta.trainer, 'nnUNetTrainer');
    assert.equal(meta.network_class_name, 'dynamic_network_architectures.architectures.unet.PlainConvUNet');
    assert.deepEqual(JSON.parse(meta.spatial_divisor!), [8, 8, 8]);
    assert.equal(meta.num_classes, '3');
    const ops = new Set(model.graph!.node!.map((n) => n.opType));
    assert.deepEqual([...ops].sort(), ['Concat', 'Conv', 'ConvTranspose', 'InstanceNormalization', 'LeakyRelu']);
  });

  it('one exported model runs on other batch and spatial sizes; writeOnnx writes it atomically', async () => {
    const net = buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { initialize: false });
    net.loadStateDict(fixtureWeights());
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'fold_0', 'model.onnx');
      await writeOnnx(path, net);
      const bytes = new Uint8Array(readFileSync(path));
      for (const shape of [[1, 1, 8, 8, 8], [3, 1, 16, 8, 24]]) {
        assert.deepEqual((await runOnnx(bytes, randomInput(shape), shape)).dims, [shape[0], 3, ...shape.slice(2)]);
      }
    } finally {
      cleanup();
    }
  });

  it('imports the nnU-Net checkpoint, exports and runs ONNX with libtorch never loaded', async function () {
    this.timeout(120000);
    const script = `
      import { pathToFileURL } from 'node:url';
      const root = process.cwd();
      const load = (p) => import(pathToFileURL(root + '/' + p).href);
      const { loadNnunetCheckpointIntoNetwork } = await load('server/engine/networks/nnunet-import.ts');
      const { exportOnnx } = await load('server/engine/onnx/export.ts');
      const fx = await load('test/engine/unet-fixtures.ts');
      const model = await loadNnunetCheckpointIntoNetwork(fx.fixtureCheckpoint());
      const shape = [1, 1, 16, 24, 16];
      const out = await fx.runOnnx(exportOnnx(model.network), fx.randomInput(shape), shape);
      const native = process.report.getReport().sharedObjects.filter((s) => /nnunet_torch|libtorch|libc10/.test(s));
      process.stdout.write(JSON.stringify({ dims: out.dims, logits: Array.from(out.data), native }));
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, maxBuffer: 1 << 28, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { dims: number[]; logits: number[]; native: string[] };
    assert.deepEqual(result.native, [], 'no libtorch library was loaded');
    assert.deepEqual(result.dims, [1, 3, 16, 24, 16]);
    if (available) {
      const net = buildNetworkFromPlans(fixturePlans(), '3d_fullres', 1, 3, { initialize: false });
      net.loadStateDict(fixtureWeights());
      const shape = [1, 1, 16, 24, 16];
      assert.ok(maxAbsDiff(torchLogits(net, randomInput(shape), shape), result.logits) < TOLERANCE);
    }
  });
});
