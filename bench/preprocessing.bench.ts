// Resampling throughput against scipy: a CT-sized volume (200 x 512 x 512 at 2.5 x 0.7 x 0.7 mm ->
// 1 mm, i.e. 500 x 358 x 358) through our resampler and through scipy.ndimage driven as nnU-Net
// drives it, in the same run. Both sides run single-threaded; rates are output voxels per second
// per core. Usage: node --import tsx bench/preprocessing.bench.ts [--small]
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { encodeNpy } from '../server/io/npy.js';
import { computeNewShape, determineSeparateZ, resampleDataToShape, type ResampleOptions } from '../server/preprocessing/resampling.js';
import { resampleSegToShape } from '../server/preprocessing/segmentation-resampling.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.NNUNET_TEST_PYTHON ?? '/usr/bin/python3';
const REFERENCE = join(HERE, '..', 'test', 'preprocessing', 'nnunet_resampling_reference.py');
const small = process.argv.includes('--small');

const shape = small ? [80, 256, 256] : [200, 512, 512];
const spacing = [2.5, 0.7, 0.7];
const target = [1, 1, 1];
const newShape = computeNewShape(shape, spacing, target);
const voxelsIn = shape.reduce((a, b) => a * b, 1);
const voxelsOut = newShape.reduce((a, b) => a * b, 1);

/** A smooth CT-like volume with noise (the rates do not depend on the values). */
function makeVolume(): { image: Float32Array; seg: Int16Array } {
  const image = new Float32Array(voxelsIn);
  const seg = new Int16Array(voxelsIn);
  const [n0, n1, n2] = shape;
  let state = 12345;
  let i = 0;
  for (let z = 0; z < n0; z++) {
    for (let y = 0; y < n1; y++) {
      for (let x = 0; x < n2; x++, i++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        const r = ((x - n2 / 2) ** 2 + (y - n1 / 2) ** 2) / (n1 * n2 * 0.16) + ((z - n0 / 2) / n0) ** 2;
        image[i] = (r < 1 ? 40 : -1000) + 200 * Math.sin(x * 0.05) * Math.cos(y * 0.03) + (state / 2 ** 32 - 0.5) * 30;
        seg[i] = r < 0.3 ? 2 : r < 1 ? 1 : 0;
      }
    }
  }
  return { image, seg };
}

function timeIt(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

function scipySeconds(input: { dtype: 'float32' | 'int16'; data: Float32Array | Int16Array }, args: Record<string, unknown>): number {
  const dir = mkdtempSync(join(tmpdir(), 'nnunet-bench-'));
  try {
    const file = join(dir, 'in.npy');
    writeFileSync(file, encodeNpy({ dtype: input.dtype, shape: [1, ...shape], data: input.data }));
    writeFileSync(join(dir, 'args.json'), JSON.stringify({ ...args, input: file }));
    const r = spawnSync(PYTHON, [REFERENCE, '--bench', join(dir, 'args.json')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`scipy baseline failed: ${r.stderr || r.error}`);
    return JSON.parse(r.stdout).seconds as number;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Case {
  name: string;
  ours: () => unknown;
  scipy: () => number;
}

const { image, seg } = makeVolume();
const sep = determineSeparateZ(null, spacing, target);
const axis = sep.separateZ ? (sep.axis as number) : null;
const cubic: ResampleOptions = { order: 3, orderZ: 0 };
const cases: Case[] = [
  {
    name: `image, nnU-Net default (cubic in plane, nearest along z: separate z = ${sep.separateZ})`,
    ours: () => resampleDataToShape(image, 1, shape, newShape, spacing, target, cubic),
    scipy: () => scipySeconds({ dtype: 'float32', data: image }, { new_shape: newShape, is_seg: false, axis, order: 3, order_z: 0 }),
  },
  {
    name: 'segmentation, nnU-Net default (label-wise linear in plane, nearest along z)',
    ours: () => resampleSegToShape(seg, shape, newShape, spacing, target, { order: 1, orderZ: 0 }),
    scipy: () => scipySeconds({ dtype: 'int16', data: seg }, { new_shape: newShape, is_seg: true, axis, order: 1, order_z: 0 }),
  },
  {
    name: 'image, full 3D cubic B-spline (scipy.ndimage.zoom order 3)',
    ours: () => resampleDataToShape(image, 1, shape, newShape, spacing, target, { ...cubic, forceSeparateZ: false }),
    scipy: () => scipySeconds({ dtype: 'float32', data: image }, { op: 'resize', new_shape: newShape, order: 3 }),
  },
];

const rate = (s: number) => voxelsOut / s;
const fmt = (v: number) => `${(v / 1e6).toFixed(2)} Mvox/s/core`;
const results = [];
console.log(`resampling ${shape.join('x')} @ ${spacing.join('x')} mm -> ${newShape.join('x')} @ 1 mm (${(voxelsOut / 1e6).toFixed(1)} M output voxels)`);
for (const c of cases) {
  c.ours(); // warm-up: JIT and page faults
  const ours = Math.min(timeIt(c.ours), timeIt(c.ours));
  const scipy = c.scipy();
  const ratio = scipy / ours;
  console.log(`${c.name}\n  ours  ${ours.toFixed(2)} s  ${fmt(rate(ours))}\n  scipy ${scipy.toFixed(2)} s  ${fmt(rate(scipy))}\n  ratio ${ratio.toFixed(2)}x`);
  results.push({ name: c.name, ours: { seconds: ours, voxelsPerSecondPerCore: rate(ours) }, scipy: { seconds: scipy, voxelsPerSecondPerCore: rate(scipy) }, ratio });
}

const scipyVersion = spawnSync(PYTHON, ['-c', 'import scipy, numpy; print(scipy.__version__, numpy.__version__)'], { encoding: 'utf8' }).stdout.trim();
const out = {
  benchmark: 'preprocessing/resampling',
  command: `node --import tsx bench/preprocessing.bench.ts${small ? ' --small' : ''}`,
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, node: process.version, scipyNumpy: scipyVersion },
  threads: 1,
  inputShape: shape,
  spacing,
  outputShape: newShape,
  targetSpacing: target,
  rateUnit: 'output voxels per second per core',
  results,
};
mkdirSync(join(HERE, 'results'), { recursive: true });
writeFileSync(join(HERE, 'results', small ? 'preprocessing-small.json' : 'preprocessing.json'), JSON.stringify(out, null, 2) + '\n');
