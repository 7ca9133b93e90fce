import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyPostprocessingCommand, determinePostprocessingCommand } from '../../client/commands/postprocessing.js';
import { connectedComponents, removeAllButLargestComponent } from '../../server/evaluation/connected-components.js';
import { readNifti, writeNifti } from '../../server/io/nifti.js';
import { parsePythonJson } from '../../server/util/pyjson.js';
import { makePhantom } from '../fixtures/synthetic.js';
import { pythonHas, runPython, tempDir } from '../helpers.js';

const io = (out: string[]) => ({ stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), env: process.env });

describe('connected components (full connectivity)', () => {
  it('joins diagonal neighbours in 3D (26-connectivity) and counts sizes', () => {
    // two voxels touching only at a corner are one component; a far voxel is another
    const shape: [number, number, number] = [3, 3, 3];
    const mask = new Uint8Array(27);
    mask[0] = 1; // (0,0,0)
    mask[13] = 1; // (1,1,1)
    mask[26] = 1; // (2,2,2)
    assert.equal(connectedComponents(mask, shape).count, 1);
    const m2 = new Uint8Array(27);
    m2[0] = 1;
    m2[2] = 1; // (0,0,2): not adjacent to (0,0,0)
    const c = connectedComponents(m2, shape);
    assert.equal(c.count, 2);
    assert.deepEqual([...c.sizes].slice(1), [1, 1]);
  });

  it('matches scipy.ndimage.label with a full 3x3x3 structure on random masks', function () {
    if (!pythonHas('numpy', 'scipy')) this.skip();
    const shape: [number, number, number] = [17, 23, 19];
    let s = 12345;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const density of [0.1, 0.25, 0.4]) {
      const mask = Uint8Array.from({ length: 17 * 23 * 19 }, () => (rand() < density ? 1 : 0));
      const ours = connectedComponents(mask, shape);
      const ref = JSON.parse(
        runPython(
          `import sys, json, numpy as np
from scipy import ndimage
m = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(${shape.join(',')})
lab, n = ndimage.label(m, structure=np.ones((3, 3, 3)))
print(json.dumps({'n': int(n), 'labels': lab.ravel().tolist()}))`,
          [],
          Buffer.from(mask),
        ).toString(),
      ) as { n: number; labels: number[] };
      assert.equal(ours.count, ref.n, `density ${density}`);
      // same partition (scipy numbers components in the same raster order)
      assert.deepEqual([...ours.labels], ref.labels);
    }
  });

  it('keeps only the largest component of the masked labels, all of them on a tie', () => {
    const shape: [number, number, number] = [1, 1, 9];
    const seg = Uint8Array.from([1, 1, 0, 2, 0, 1, 0, 2, 2]);
    assert.deepEqual([...removeAllButLargestComponent(seg, shape, 1)], [1, 1, 0, 2, 0, 0, 0, 2, 2]);
    assert.deepEqual([...removeAllButLargestComponent(seg, shape, [1, 2])], [1, 1, 0, 0, 0, 0, 0, 2, 2]);
    assert.deepEqual([...removeAllButLargestComponent(Uint8Array.from([1, 0, 1]), [1, 1, 3], 1)], [1, 0, 1]);
  });
});

describe('determine and apply postprocessing', function () {
  this.timeout(60_000);
  it('accepts largest-component postprocessing when spurious blobs hurt Dice, and applies it from postprocessing.json', async () => {
    const tmp = tempDir();
    try {
      const gt = join(tmp.dir, 'gt');
      const pred = join(tmp.dir, 'pred');
      mkdirSync(gt);
      mkdirSync(pred);
      const affine = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
      for (let c = 0; c < 3; c++) {
        const p = makePhantom({ shape: [24, 32, 32], labels: 2, seed: 10 + c });
        const spurious = p.label.slice();
        // a blob of label 1 in a corner, away from everything
        for (let z = 0; z < 3; z++) for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) spurious[(z * 32 + y) * 32 + x] = 1;
        const image = { shape: p.shape, channels: 1, spacing: p.spacing, affine };
        await writeNifti(join(gt, `case_${c}.nii.gz`), { ...image, data: p.label }, { datatype: 'uint8' });
        await writeNifti(join(pred, `case_${c}.nii.gz`), { ...image, data: spurious }, { datatype: 'uint8' });
      }
      const dj = join(tmp.dir, 'dataset.json');
      writeFileSync(dj, JSON.stringify({ channel_names: { 0: 'T2' }, labels: { background: 0, a: 1, b: 2 }, numTraining: 3, file_ending: '.nii.gz' }));
      const out: string[] = [];
      assert.equal(await determinePostprocessingCommand.run({ input: pred, ref: gt, dj, np: 2 }, io(out)), 0);
      const pp = parsePythonJson(readFileSync(join(pred, 'postprocessing.json'), 'utf8')) as {
        postprocessing_fns: string[]; postprocessing_kwargs: { labels_or_regions: unknown }[];
        input_folder: { foreground_mean: { Dice: number } }; postprocessed: { foreground_mean: { Dice: number }; mean: Record<string, { Dice: number }> };
      };
      assert.ok(pp.postprocessing_fns.length >= 1);
      assert.equal(pp.postprocessing_fns[0], 'remove_all_but_largest_component_from_segmentation');
      assert.ok(pp.postprocessed.foreground_mean.Dice > pp.input_folder.foreground_mean.Dice);
      assert.equal(pp.postprocessed.mean['1'].Dice, 1);
      // apply through the pkl-path spelling nnU-Net users type
      const applied = join(tmp.dir, 'applied');
      assert.equal(await applyPostprocessingCommand.run({ input: pred, output: applied, pp: join(pred, 'postprocessing.pkl'), dj, np: 2 }, io(out)), 0);
      for (let c = 0; c < 3; c++) {
        const a = await readNifti(join(applied, `case_${c}.nii.gz`));
        const g = await readNifti(join(gt, `case_${c}.nii.gz`));
        assert.deepEqual([...a.data], [...g.data]);
        assert.deepEqual(a.affine, g.affine);
      }
    } finally {
      tmp.cleanup();
    }
  });
});

