import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { computeCaseMetrics, evaluateFolder, labelOrRegionKey, summarize } from '../../server/evaluation/index.js';
import { parsePythonJson } from '../../server/util/pyjson.js';
import { evaluateFolderCommand } from '../../client/commands/evaluate.js';
import { HIPPOCAMPUS, SHARED, tempDir } from '../helpers.js';

const PREDICTIONS = join(SHARED, 'fixtures', 'nnunetv2_model', 'predictions');
const CASES = ['hippocampus_001', 'hippocampus_003', 'hippocampus_004'];

type Json = Record<string, unknown>;

/** Asserts numbers equal within `tol`, treating NaN == NaN, recursing into objects. */
function assertClose(actual: unknown, expected: unknown, tol: number, path = ''): void {
  if (typeof expected === 'number') {
    assert.equal(typeof actual, 'number', path);
    if (Number.isNaN(expected)) assert.ok(Number.isNaN(actual as number), `${path}: expected NaN, got ${actual}`);
    else assert.ok(Math.abs((actual as number) - expected) <= tol, `${path}: ${actual} vs ${expected}`);
    return;
  }
  if (expected && typeof expected === 'object') {
    assert.deepEqual(Object.keys(actual as Json).sort(), Object.keys(expected as Json).sort(), path);
    for (const key of Object.keys(expected as Json)) assertClose((actual as Json)[key], (expected as Json)[key], tol, `${path}.${key}`);
    return;
  }
}

describe('evaluation metrics', () => {
  it('counts TP/FP/FN/TN outside the ignore label; Dice and IoU are NaN when a structure is absent in both', () => {
    const ref = [0, 1, 1, 2, 2, 3, 0];
    const pred = [1, 1, 0, 2, 1, 1, 0];
    const m = computeCaseMetrics(ref, pred, [1, 2], 3);
    assert.deepEqual(m.get('1'), { TP: 1, FP: 2, FN: 1, TN: 2, Dice: 2 / 5, IoU: 1 / 4, n_pred: 3, n_ref: 2 });
    assert.deepEqual(m.get('2'), { TP: 1, FP: 0, FN: 1, TN: 4, Dice: 2 / 3, IoU: 1 / 2, n_pred: 1, n_ref: 2 });
    const absent = computeCaseMetrics([0, 0], [0, 0], [4]).get('4')!;
    assert.ok(Number.isNaN(absent.Dice) && Number.isNaN(absent.IoU));
    // a region is the union of its labels
    const region = computeCaseMetrics([1, 2, 0], [2, 2, 1], [[1, 2]]).get('(1, 2)')!;
    assert.deepEqual([region.TP, region.FP, region.FN, region.TN], [2, 1, 0, 0]);
  });

  it('nanmeans over cases and plain-means over classes (NaN propagates from a class absent everywhere)', () => {
    const c = (d1: number, d2: number) => ({ reference_file: '', prediction_file: '', metrics: {
      '1': { TP: 0, FP: 0, FN: 0, TN: 0, Dice: d1, IoU: 0, n_pred: 0, n_ref: 0 },
      '2': { TP: 0, FP: 0, FN: 0, TN: 0, Dice: d2, IoU: 0, n_pred: 0, n_ref: 0 } } });
    const s = summarize([c(0.5, NaN), c(NaN, NaN), c(1, NaN)], ['1', '2']);
    assert.equal(s.mean['1'].Dice, 0.75);
    assert.ok(Number.isNaN(s.mean['2'].Dice));
    assert.ok(Number.isNaN(s.foreground_mean.Dice));
  });

  it("formats region keys like Python's str(tuple)", () => {
    assert.equal(labelOrRegionKey(2), '2');
    assert.equal(labelOrRegionKey([1, 2, 3]), '(1, 2, 3)');
    assert.equal(labelOrRegionKey([3]), '(3,)');
  });
});

describe('evaluate_folder against nnU-Net v2', function () {
  this.timeout(60_000);
  for (const variant of ['tta', 'notta']) {
    it(`reproduces nnU-Net's summary.json for the fixture predictions (${variant}) to 1e-6`, async () => {
      const tmp = tempDir();
      try {
        const gt = join(tmp.dir, 'gt');
        const pred = join(tmp.dir, 'pred');
        mkdirSync(gt);
        mkdirSync(pred);
        for (const c of CASES) {
          copyFileSync(join(HIPPOCAMPUS, 'labelsTr', `${c}.nii.gz`), join(gt, `${c}.nii.gz`));
          copyFileSync(join(PREDICTIONS, variant, `${c}.nii.gz`), join(pred, `${c}.nii.gz`));
        }
        const out: string[] = [];
        const code = await evaluateFolderCommand.run(
          { gt_folder: gt, pred_folder: pred, djfile: join(PREDICTIONS, variant, 'dataset.json'), pfile: join(PREDICTIONS, variant, 'plans.json'), np: 2, chill: false },
          { stdout: (t) => out.push(t), stderr: (t) => out.push(t), env: process.env },
        );
        assert.equal(code, 0);
        const ours = parsePythonJson(readFileSync(join(pred, 'summary.json'), 'utf8')) as Json;
        const theirs = parsePythonJson(readFileSync(join(PREDICTIONS, variant, 'summary.json'), 'utf8')) as Json;
        assertClose(ours.foreground_mean, theirs.foreground_mean, 1e-6, 'foreground_mean');
        assertClose(ours.mean, theirs.mean, 1e-6, 'mean');
        const perCase = (s: Json) => (s.metric_per_case as Json[]).map((c) => c.metrics);
        assertClose(perCase(ours), perCase(theirs), 1e-6, 'metric_per_case');
        assert.match(out.join('\n'), /foreground\s+Dice 0\.8\d{3}/);
      } finally {
        tmp.cleanup();
      }
    });
  }

  it('fails naming the missing predictions unless chill', async () => {
    const tmp = tempDir();
    try {
      const gt = join(tmp.dir, 'gt');
      const pred = join(tmp.dir, 'pred');
      mkdirSync(gt);
      mkdirSync(pred);
      for (const c of CASES) copyFileSync(join(HIPPOCAMPUS, 'labelsTr', `${c}.nii.gz`), join(gt, `${c}.nii.gz`));
      copyFileSync(join(PREDICTIONS, 'tta', `${CASES[0]}.nii.gz`), join(pred, `${CASES[0]}.nii.gz`));
      const options = { fileEnding: '.nii.gz', labelsOrRegions: [1, 2] };
      await assert.rejects(evaluateFolder(gt, pred, options), /2 reference case\(s\) have no prediction .*hippocampus_003\.nii\.gz, hippocampus_004\.nii\.gz/);
      const s = await evaluateFolder(gt, pred, { ...options, chill: true });
      assert.equal(s.metric_per_case.length, 1);
      copyFileSync(join(HIPPOCAMPUS, 'labelsTr', 'hippocampus_006.nii.gz'), join(pred, `${CASES[1]}.nii.gz`));
      await assert.rejects(evaluateFolder(gt, pred, { ...options, chill: true }), /hippocampus_003\.nii\.gz: shape .* does not match/);
    } finally {
      tmp.cleanup();
    }
  });
});
