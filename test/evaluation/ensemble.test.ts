import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensembleCommand } from '../../client/commands/ensemble.js';
import { readNifti } from '../../server/io/nifti.js';
import { decodeNpz } from '../../server/io/npz.js';
import { SHARED, tempDir } from '../helpers.js';

const PRED = join(SHARED, 'fixtures', 'nnunetv2_model', 'predictions');

describe('nnunet ensemble', () => {
  it("averages nnU-Net's own probability files (with their .pkl geometry) and argmaxes the mean", async () => {
    const tmp = tempDir();
    try {
      const out = join(tmp.dir, 'ens');
      const lines: string[] = [];
      const io = { stdout: (t: string) => lines.push(t), stderr: (t: string) => lines.push(t), env: process.env };
      assert.equal(await ensembleCommand.run({ input: [join(PRED, 'tta'), join(PRED, 'notta')], output: out, saveNpz: true }, io), 0);
      assert.match(lines.join(), /ensembled 3 case\(s\) from 2 folders/);
      for (const c of ['hippocampus_001', 'hippocampus_003', 'hippocampus_004']) {
        const a = decodeNpz(readFileSync(join(PRED, 'tta', `${c}.npz`))).probabilities;
        const b = decodeNpz(readFileSync(join(PRED, 'notta', `${c}.npz`))).probabilities;
        const voxels = a.data.length / 3;
        const seg = await readNifti(join(out, `${c}.nii.gz`));
        const ref = await readNifti(join(PRED, 'tta', `${c}.nii.gz`));
        assert.deepEqual(seg.shape, ref.shape);
        assert.deepEqual(seg.affine, ref.affine);
        for (let v = 0; v < voxels; v++) {
          const m = [0, 1, 2].map((k) => (a.data[k * voxels + v] as number) + (b.data[k * voxels + v] as number));
          const best = m.indexOf(Math.max(...m));
          assert.equal(seg.data[v], best, `${c} voxel ${v}`);
        }
        const mean = decodeNpz(readFileSync(join(out, `${c}.npz`))).probabilities;
        assert.ok(Math.abs((mean.data[5] as number) - ((a.data[5] as number) + (b.data[5] as number)) / 2) < 1e-6);
      }
      await assert.rejects(ensembleCommand.run({ input: [join(PRED, 'tta')], output: out, saveNpz: false }, io), /at least two/);
    } finally {
      tmp.cleanup();
    }
  });
});
