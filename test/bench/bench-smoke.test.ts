// Smoke test of the engine benchmarks: each script runs end to end with --small (a 16³ patch and
// quarter-width features, one iteration) against its PyTorch baseline and writes well-formed
// results. Times are not checked: benchmarks report ratios, tests only prove they still run.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { torchAvailable } from '../../server/engine/torch.js';
import { pythonHas, REPO_ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);
const ready = torchAvailable() && pythonHas('torch');
if (!ready) console.warn('bench smoke tests skipped: needs the libtorch binding and PyTorch in /usr/bin/python3');
const withTorch = ready ? it : it.skip;
// Each small run takes a few seconds alone; the margin is for a busy CI machine.
const PER_SCRIPT_MS = 120_000; // a hang guard, not a speed check: CI machines are shared and noisy

/** Runs bench/<script> --small writing its JSON into a temporary folder; returns the parsed results. */
async function runSmall(script: string): Promise<Record<string, unknown>> {
  const { dir, cleanup } = tempDir('nnunet-bench-');
  try {
    const out = join(dir, 'result.json');
    await run(process.execPath, ['--import', 'tsx', join('bench', script), '--small', '--out', out], { cwd: REPO_ROOT, timeout: PER_SCRIPT_MS });
    return JSON.parse(readFileSync(out, 'utf8'));
  } finally {
    cleanup();
  }
}

describe('bench (smoke, --small)', function () {
  this.timeout(PER_SCRIPT_MS + 2_000);

  withTorch('engine-train-step times both sides on the same network and reports a ratio', async () => {
    const r = (await runSmall('engine-train-step.bench.ts')) as {
      ours: { secondsPerStep: number; parameters: number; phases: Record<string, number> };
      pytorch: { secondsPerStep: number; parameters: number };
      ratio: number;
    };
    assert.equal(r.ours.parameters, r.pytorch.parameters);
    assert.ok(r.ours.secondsPerStep > 0 && r.pytorch.secondsPerStep > 0);
    assert.ok(Number.isFinite(r.ratio) && r.ratio > 0);
    assert.deepEqual(Object.keys(r.ours.phases), ['forward', 'loss', 'backward', 'clip', 'optimiser']);
  });

  withTorch('inference-forward times onnxruntime, libtorch and PyTorch at batch 1 and 2', async () => {
    const r = (await runSmall('inference-forward.bench.ts')) as {
      flopsPerSample: number;
      results: { batch: number; engines: Record<string, { secondsPerForward: number; gflopsPerSecond: number }> }[];
    };
    // 4 stages of 2 convs (4..32 features), 3 transposed convs, 6 decoder convs, one 1×1 head on 16³.
    assert.equal(r.flopsPerSample, 31_416_320);
    assert.deepEqual(r.results.map((b) => b.batch), [1, 2]);
    for (const b of r.results) {
      assert.deepEqual(Object.keys(b.engines).sort(), ['libtorch', 'onnxruntime', 'pytorch']);
      for (const e of Object.values(b.engines)) assert.ok(e.secondsPerForward > 0 && e.gflopsPerSecond > 0);
    }
  });
});
