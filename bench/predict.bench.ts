// Per-case prediction with the real nnU-Net v2 Hippocampus model: our predictCase (end to end from
// NIfTI, and its sliding-window part) with and without mirroring, 1 and 5 folds, against a plain
// PyTorch rebuild of nnU-Net's predictor (bench/baselines/pytorch_predict.py) on the very arrays our
// preprocessing produced, same thread count, the two sides alternating repeat by repeat. Prints a
// table (baseline/ours > 1: we are faster), writes bench/results/predict.json and, with
// --append-results, appends the section to bench/RESULTS.md.
// Usage: node --import tsx bench/predict.bench.ts [--cases N] [--repeats R] [--threads T] [--warmup W] [--small] [--out FILE] [--append-results]
import { installFixtureModel } from '../test/fixtures/nnunet-model.js';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeNpy, encodeNpy } from '../server/io/npy.js';
import { loadModelFolder, releaseModel, type LoadedModel } from '../server/inference/model-folder.js';
import { ensembleFoldLogits } from '../server/inference/predict-logits.js';
import { predictCase } from '../server/inference/predictor.js';
import { readRawCase } from '../server/preprocessing/case-files.js';
import { preprocessCase, type PreprocessedCase } from '../server/preprocessing/preprocessor.js';
import { resultsSection, resultsTable, summariseVariant, type BaselineRun, type OurCaseRun, type Variant, type VariantResult } from './predict-report.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BASELINE = join(HERE, 'baselines', 'pytorch_predict.py');
const SHARED = process.env.NNUNET_SHARED_DIR ?? join(HERE, '..', '..', 'shared');
const FIXTURE = join(SHARED, 'fixtures', 'nnunetv2_model');
const IMAGES = join(SHARED, 'data', 'Dataset004_Hippocampus', 'imagesTr');
// The cases nnU-Net's own predictor was timed on (fixture timings.json) come first.
const TIMED_CASES = ['hippocampus_001', 'hippocampus_003', 'hippocampus_004'];

const { values: args } = parseArgs({
  options: {
    cases: { type: 'string' },
    repeats: { type: 'string' },
    threads: { type: 'string' },
    warmup: { type: 'string' },
    small: { type: 'boolean', default: false },
    out: { type: 'string' },
    python: { type: 'string' },
    'append-results': { type: 'boolean', default: false },
  },
});
const small = args.small === true;
const nCases = Number(args.cases ?? (small ? 1 : 3));
const repeats = Number(args.repeats ?? (small ? 1 : 3));
const warmup = Number(args.warmup ?? (small ? 0 : 1));
const threads = Number(args.threads ?? availableParallelism());
const python = args.python ?? process.env.NNUNET_TEST_PYTHON ?? '/usr/bin/python3';
// --small keeps one variant of each code path (mirroring, fold ensemble) and leaves out the costliest
// one (5 folds × 8 mirrors) so a smoke run stays short.
const variants: Variant[] = [
  { tta: false, folds: 1 },
  { tta: true, folds: 1 },
  { tta: false, folds: 5 },
  ...(small ? [] : [{ tta: true, folds: 5 }]),
];

function pickCases(n: number): string[] {
  const all = readdirSync(IMAGES)
    .filter((f) => f.endsWith('_0000.nii.gz'))
    .map((f) => f.slice(0, -'_0000.nii.gz'.length))
    .sort();
  const ordered = [...TIMED_CASES.filter((c) => all.includes(c)), ...all.filter((c) => !TIMED_CASES.includes(c))];
  if (n < 1 || n > ordered.length) throw new RangeError(`--cases must be 1..${ordered.length}`);
  return ordered.slice(0, n);
}

/** Our preprocessing of one case, exactly as predictCase calls it (no cascade). */
async function preprocess(model: LoadedModel, file: string): Promise<PreprocessedCase> {
  const { images, input } = await readRawCase([file], undefined);
  return preprocessCase(images, undefined, input, model.plans, model.configuration, model.labels, { withoutSegmentation: true });
}

/** Counts the seconds spent inside onnxruntime (session.run) for every fold of the model. */
function countOnnxTime(model: LoadedModel): { seconds: number } {
  const clock = { seconds: 0 };
  for (const fold of model.folds) {
    const run = fold.runner.run.bind(fold.runner);
    fold.runner.run = async (batch, shape) => {
      const t0 = performance.now();
      const r = await run(batch, shape);
      clock.seconds += (performance.now() - t0) / 1000;
      return r;
    };
  }
  return clock;
}

function runBaseline(modelFolder: string, v: Variant, npys: string[], saveLogits?: string): BaselineRun {
  const folds = Array.from({ length: v.folds }, (_, i) => String(i)).join(',');
  const argv = [BASELINE, '--model-folder', modelFolder, '--folds', folds, '--threads', String(threads), '--repeats', '1', '--warmup', String(warmup)];
  if (v.tta) argv.push('--tta');
  if (saveLogits) argv.push('--save-logits', saveLogits);
  const r = spawnSync(python, [...argv, ...npys], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`PyTorch baseline failed (${python} ${BASELINE}): ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as BaselineRun;
}

function compareLogits(ours: Float32Array, theirsNpy: string): { maxAbsDiff: number; fractionDifferent: number } {
  const theirs = decodeNpy(readFileSync(theirsNpy), theirsNpy).data;
  if (theirs.length !== ours.length) throw new Error(`logits sizes differ: ours ${ours.length}, PyTorch ${theirs.length}`);
  let maxAbsDiff = 0;
  let different = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - theirs[i]);
    if (d > 0) different++;
    if (d > maxAbsDiff) maxAbsDiff = d;
  }
  return { maxAbsDiff, fractionDifferent: different / ours.length };
}

function cpuModelName(): string {
  const r = spawnSync('lscpu', { encoding: 'utf8' });
  const line = r.status === 0 ? r.stdout.split('\n').find((l) => l.startsWith('Model name:')) : undefined;
  return line ? line.slice('Model name:'.length).trim() : (cpus()[0]?.model ?? 'unknown');
}

function nnunetReference(): { tta: number; notta: number } | undefined {
  try {
    const read = (v: string) => (JSON.parse(readFileSync(join(FIXTURE, 'predictions', v, 'timings.json'), 'utf8')) as { predict_s_mean: number }).predict_s_mean;
    return { tta: read('tta'), notta: read('notta') };
  } catch {
    return undefined;
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'nnunet-predict-bench-'));
const load = [loadavg()[0]];
const results: VariantResult[] = [];
let torchVersion = 'unknown';
let torchBuild = 'unknown';
const caseIds = pickCases(nCases);
const files = caseIds.map((c) => join(IMAGES, `${c}_0000.nii.gz`));
try {
  const modelFolder = installFixtureModel(join(tmp, 'results'));
  // Five folds of the same weights: the ensemble's cost, honestly labelled (the fixture has fold 0 only).
  for (let f = 1; f < 5; f++) cpSync(join(modelFolder, 'fold_0'), join(modelFolder, `fold_${f}`), { recursive: true });

  console.log(`predict: ${caseIds.length} case(s) [${caseIds.join(', ')}], ${repeats} repeat(s), warm-up ${warmup}, ${threads} thread(s), load ${load[0].toFixed(1)}`);
  let first: PreprocessedCase | undefined;
  const npys: string[] = [];
  const model1 = await loadModelFolder(modelFolder, { folds: ['0'], intraOpThreads: threads });
  for (const [i, file] of files.entries()) {
    const pre = await preprocess(model1, file);
    first ??= pre;
    npys.push(join(tmp, `${caseIds[i]}.npy`));
    writeFileSync(npys[i], encodeNpy({ dtype: 'float32', shape: [pre.channels, ...pre.shape], data: pre.data }));
  }
  await releaseModel(model1);

  for (const v of variants) {
    const model = await loadModelFolder(modelFolder, { folds: Array.from({ length: v.folds }, (_, i) => String(i)), intraOpThreads: threads });
    const onnx = countOnnxTime(model);
    for (let w = 0; w < warmup; w++) await predictCase(model, [files[0]], { mirroring: v.tta });
    const ours: OurCaseRun[][] = [];
    const pytorch: BaselineRun[] = [];
    let logitsCheck: VariantResult['logitsCheck'];
    for (let r = 0; r < repeats; r++) {
      const runs: OurCaseRun[] = [];
      for (const file of files) {
        const c0 = process.cpuUsage();
        const o0 = onnx.seconds;
        const t0 = performance.now();
        const p = await predictCase(model, [file], { mirroring: v.tta });
        const wall = (performance.now() - t0) / 1000;
        const c = process.cpuUsage(c0);
        runs.push({ wall, cpu: (c.user + c.system) / 1e6, ...p.timings, onnxS: onnx.seconds - o0 });
      }
      ours.push(runs);
      const saveLogits = r === 0 && v.folds === 1 ? join(tmp, 'pytorch-logits.npy') : undefined;
      pytorch.push(runBaseline(modelFolder, v, npys, saveLogits));
      const last = pytorch[pytorch.length - 1];
      torchVersion = last.torch;
      torchBuild = `BLAS ${last.blas}, MKL ${last.mkl ? 'yes' : 'no'}`;
      if (saveLogits && first) {
        const mirrorAxes = v.tta ? model.folds[0].mirrorAxes : [];
        const logits = await ensembleFoldLogits(model.folds.map((f) => f.runner), first.data, first.channels, first.shape as [number, number, number], {
          patchSize: model.configuration.patch_size,
          mirrorAxes,
        });
        logitsCheck = compareLogits(logits.data, saveLogits);
      }
      load.push(loadavg()[0]);
    }
    await releaseModel(model);
    const res = summariseVariant(v, ours, pytorch, logitsCheck);
    results.push(res);
    console.log(
      `  ${v.tta ? 'TTA' : 'no TTA'}, ${v.folds} fold(s): ours ${res.ours.endToEnd.toFixed(3)} s/case end to end, ${res.ours.slidingWindow.toFixed(3)} sliding window ` +
        `(onnxruntime ${res.ours.onnxruntime.toFixed(3)}); PyTorch ${res.pytorch.slidingWindow.toFixed(3)}; baseline/ours ${res.ratio.slidingWindow.toFixed(2)} (load ${load[load.length - 1].toFixed(1)})`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const nnunet = nnunetReference();
const command = `node --import tsx bench/predict.bench.ts ${process.argv.slice(2).join(' ')}`.trim();
const meta = { command, nproc: availableParallelism(), cpuModel: cpuModelName(), loadAverage1m: load, node: process.version, torch: torchVersion, torchBuild, threads, cases: caseIds, repeats, warmup };
console.log('\n' + resultsTable(results, nnunet));

const out = {
  benchmark: 'inference/predict',
  ...meta,
  model: 'fixture nnunetv2_model (Dataset104_HippoDev, 3d_fullres, fold 0; the 5-fold variants run fold 0 five times)',
  nnunetPredictorFromFixture: nnunet ? { ...nnunet, note: 'predict_s_mean of nnUNetv2_predict, 1 fold, 2-core CPU, another run and machine state' } : null,
  ratioMeaning: 'PyTorch baseline seconds per case / ours (medians): > 1 means we are faster',
  results,
};
const file = args.out ?? join(HERE, 'results', small ? 'predict-small.json' : 'predict.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
if (args['append-results'] === true) appendFileSync(join(HERE, 'RESULTS.md'), '\n' + resultsSection(meta, results, nnunet));
