// Smoke test of bench/predict.bench.ts: with --small (one case, one repeat, no warm-up, the 5-fold
// TTA variant left out) it runs our predictor and the PyTorch predictor on the real fixture model and
// writes well-formed results. Times are not checked, only that both sides computed the same logits.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pythonHas, REPO_ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);
const ready = pythonHas('torch', 'numpy', 'scipy');
if (!ready) console.warn('predict bench smoke test skipped: needs PyTorch, numpy and scipy in /usr/bin/python3');
const withTorch = ready ? it : it.skip;
// About 50 s on a busy 2-core machine, most of it the PyTorch side.
const LIMIT_MS = 240_000; // a hang guard, not a speed check

interface SmallResults {
  cases: string[];
  results: {
    tta: boolean;
    folds: number;
    ours: { endToEnd: number; slidingWindow: number; onnxruntime: number };
    pytorch: { slidingWindow: number };
    ratio: { slidingWindow: number; endToEnd: number };
    logitsCheck?: { maxAbsDiff: number; fractionDifferent: number };
  }[];
}

describe('bench predict (smoke, --small)', function () {
  this.timeout(LIMIT_MS + 5_000);

  withTorch('times our predictor and the PyTorch predictor on the same arrays and reports ratios', async () => {
    const { dir, cleanup } = tempDir('nnunet-bench-');
    try {
      const out = join(dir, 'predict.json');
      await run(process.execPath, ['--import', 'tsx', join('bench', 'predict.bench.ts'), '--small', '--threads', '2', '--out', out], { cwd: REPO_ROOT, timeout: LIMIT_MS });
      const r = JSON.parse(readFileSync(out, 'utf8')) as SmallResults;
      assert.deepEqual(r.cases, ['hippocampus_001']);
      assert.deepEqual(r.results.map((v) => [v.tta, v.folds]), [[false, 1], [true, 1], [false, 5]]);
      for (const v of r.results) {
        assert.ok(v.ours.slidingWindow > 0 && v.ours.endToEnd >= v.ours.slidingWindow && v.pytorch.slidingWindow > 0);
        assert.ok(v.ours.onnxruntime > 0 && v.ours.onnxruntime <= v.ours.slidingWindow);
        assert.ok(Number.isFinite(v.ratio.slidingWindow) && v.ratio.slidingWindow > 0);
      }
      // The single-fold variants compare logits: float16 accumulators, so convolutions that differ
      // in the last float32 bit may round to the neighbouring float16 value, and nothing more.
      for (const v of r.results.filter((x) => x.folds === 1)) {
        assert.ok(v.logitsCheck, 'single-fold variants compare logits');
        assert.ok(v.logitsCheck.maxAbsDiff <= 0.0625, `max |Δ logit| ${v.logitsCheck.maxAbsDiff}`);
        assert.ok(v.logitsCheck.fractionDifferent < 0.02, `${v.logitsCheck.fractionDifferent} of the logits differ`);
      }
    } finally {
      cleanup();
    }
  });
});
