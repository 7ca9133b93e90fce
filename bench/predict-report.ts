// Summaries and text of bench/predict.bench.ts: per-variant medians (seconds per case, ours end to
// end and sliding window alone, the PyTorch baseline's sliding window), the console table and the
// bench/RESULTS.md section. Ratios are baseline / ours, so > 1 means we are faster.

/** One of our predictCase calls. */
export interface OurCaseRun {
  wall: number;
  cpu: number;
  readS: number;
  preprocessS: number;
  predictS: number;
  exportS: number;
  /** Seconds inside onnxruntime's session.run during predictS. */
  onnxS: number;
}

/** One call of bench/baselines/pytorch_predict.py (one repeat over every case). */
export interface BaselineRun {
  seconds_per_case: number;
  seconds_per_case_detail: number[][];
  cpu_seconds_per_case_detail: number[][];
  with_tta: boolean;
  folds: number;
  threads: number;
  torch: string;
  blas: string;
  mkl: boolean;
}

export interface Variant {
  tta: boolean;
  folds: number;
}

export interface VariantResult extends Variant {
  /** Seconds per case, medians over repeats of the mean over cases. */
  ours: { endToEnd: number; slidingWindow: number; onnxruntime: number; jsLoops: number; read: number; preprocess: number; export: number; cpuEndToEnd: number };
  pytorch: { slidingWindow: number; cpuSlidingWindow: number };
  /** PyTorch sliding window / ours: sliding window alone, and our whole pipeline from NIfTI. */
  ratio: { slidingWindow: number; endToEnd: number; cpu: number };
  /** Our and the baseline's logits of the first case (1 fold only): same network, same arithmetic. */
  logitsCheck?: { maxAbsDiff: number; fractionDifferent: number };
  /** Every measurement, repeat by repeat (ours: one entry per case). */
  raw: { ours: OurCaseRun[][]; pytorch: { wall: number[]; cpu: number[] }[] };
}

export const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
/** Median over repeats of the per-case mean of one quantity. */
const perCase = <T>(repeats: T[][], pick: (r: T) => number) => median(repeats.map((cases) => mean(cases.map(pick))));

export function summariseVariant(v: Variant, ours: OurCaseRun[][], pytorch: BaselineRun[], logitsCheck?: VariantResult['logitsCheck']): VariantResult {
  const py = pytorch.map((r) => ({ wall: r.seconds_per_case_detail[0], cpu: r.cpu_seconds_per_case_detail[0] }));
  const o = {
    endToEnd: perCase(ours, (r) => r.wall),
    slidingWindow: perCase(ours, (r) => r.predictS),
    onnxruntime: perCase(ours, (r) => r.onnxS),
    jsLoops: perCase(ours, (r) => r.predictS - r.onnxS),
    read: perCase(ours, (r) => r.readS),
    preprocess: perCase(ours, (r) => r.preprocessS),
    export: perCase(ours, (r) => r.exportS),
    cpuEndToEnd: perCase(ours, (r) => r.cpu),
  };
  const p = { slidingWindow: median(py.map((r) => mean(r.wall))), cpuSlidingWindow: median(py.map((r) => mean(r.cpu))) };
  // CPU seconds of every thread move less than wall time with other load on a shared machine; ours
  // covers the whole predictCase (read to export), so that ratio leans towards the baseline.
  const ratio = { slidingWindow: p.slidingWindow / o.slidingWindow, endToEnd: p.slidingWindow / o.endToEnd, cpu: p.cpuSlidingWindow / o.cpuEndToEnd };
  return { ...v, ours: o, pytorch: p, ratio, logitsCheck, raw: { ours, pytorch: py } };
}

const label = (v: Variant) => `${v.tta ? 'TTA (8 mirrors)' : 'no TTA'}, ${v.folds} fold${v.folds > 1 ? 's' : ''}`;
const s = (x: number) => x.toFixed(3);

/** Markdown table (also printed to the console: it reads as plain text too). */
export function resultsTable(results: readonly VariantResult[], nnunet: { tta: number; notta: number } | undefined): string {
  const rows = [
    '| variant | ours end to end (s/case) | ours sliding window (s/case) | of which onnxruntime · JS | PyTorch sliding window (s/case) | baseline/ours, sliding window | baseline/ours, our end to end | CPU s/case ours · PyTorch (ratio) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    rows.push(
      `| ${label(r)} | ${s(r.ours.endToEnd)} | ${s(r.ours.slidingWindow)} | ${s(r.ours.onnxruntime)} · ${s(r.ours.jsLoops)} | ${s(r.pytorch.slidingWindow)} | **${r.ratio.slidingWindow.toFixed(2)}×** | ${r.ratio.endToEnd.toFixed(2)}× | ${s(r.ours.cpuEndToEnd)} · ${s(r.pytorch.cpuSlidingWindow)} (${r.ratio.cpu.toFixed(2)}×) |`,
    );
  }
  if (nnunet) {
    for (const tta of [false, true]) {
      const ours = results.find((r) => r.tta === tta && r.folds === 1);
      const theirs = tta ? nnunet.tta : nnunet.notta;
      const ratio = ours ? `${(theirs / ours.ours.slidingWindow).toFixed(2)}× (other run)` : '-';
      const e2e = ours ? `${(theirs / ours.ours.endToEnd).toFixed(2)}× (other run)` : '-';
      rows.push(`| nnU-Net v2 predictor, ${tta ? 'TTA' : 'no TTA'}, 1 fold (fixture timings.json) | | | | ${s(theirs)} | ${ratio} | ${e2e} | |`);
    }
  }
  return rows.join('\n');
}

export interface ResultsMeta {
  command: string;
  nproc: number;
  cpuModel: string;
  loadAverage1m: number[];
  node: string;
  torch: string;
  /** BLAS and MKL of the baseline's PyTorch build. */
  torchBuild: string;
  threads: number;
  cases: string[];
  repeats: number;
  warmup: number;
}

/** The section appended to bench/RESULTS.md. */
export function resultsSection(meta: ResultsMeta, results: readonly VariantResult[], nnunet: { tta: number; notta: number } | undefined): string {
  const load = meta.loadAverage1m.map((l) => l.toFixed(1)).join(', ');
  const checks = results
    .filter((r) => r.logitsCheck)
    .map((r) => `${label(r)}: max |Δ| ${r.logitsCheck!.maxAbsDiff.toExponential(2)}, ${(r.logitsCheck!.fractionDifferent * 100).toFixed(3)} % of values differ`)
    .join('; ');
  return [
    '## Inference: prediction per case against a PyTorch predictor (`bench/predict.bench.ts`)',
    '',
    `Command: \`${meta.command}\`.`,
    `Machine: \`nproc\` = ${meta.nproc}, \`lscpu | grep 'Model name'\`: ${meta.cpuModel}; Node ${meta.node}, PyTorch ${meta.torch} (\`/usr/bin/python3\`, ${meta.torchBuild});`,
    `load average (1 min) during the run: ${load}. Threads: ${meta.threads} on both sides (onnxruntime intra-op, \`torch.set_num_threads\`).`,
    '',
    `Model: the fixture's real nnU-Net v2 model (Dataset104_HippoDev, 3d_fullres PlainConvUNet, features [8, 16, 32, 64],`,
    'patch 40×56×40). It has fold 0 only: the 5-fold rows copy fold_0 to fold_1..fold_4, so they run the same weights five',
    `times — the cost of a 5-fold ensemble, not its accuracy. Cases: ${meta.cases.join(', ')}; ${meta.repeats} repeat(s) after ${meta.warmup}`,
    'warm-up prediction(s); seconds per case are medians over repeats of the mean over cases; the two sides alternate repeat by repeat.',
    '',
    '"Ours end to end" is `predictCase` from the NIfTI file to the exported segmentation (read, preprocess, sliding window,',
    'export); "sliding window" is its `predictS` (all folds, TTA, float16 accumulation) on the preprocessed array. The',
    'baseline (`bench/baselines/pytorch_predict.py`) is nnU-Net\'s `predict_logits_from_preprocessed_data` rebuilt in plain',
    'PyTorch on the same checkpoint, fed the very arrays our preprocessing produced (written as .npy), one tile per forward',
    'and one forward per mirror as nnU-Net does. Baseline/ours > 1 means we are faster. The CPU column sums the seconds of',
    'every thread (process CPU time), which other load on a shared machine moves less than wall time.',
    '',
    resultsTable(results, nnunet),
    '',
    checks ? `Same computation on both sides (first case, logits after the fold mean): ${checks}.` : '',
    nnunet
      ? `nnU-Net's own predictor (fixture \`predictions/{tta,notta}/timings.json\`, \`predict_s_mean\` over the same three cases) ran ` +
        'in another session on another 2-core machine whose state is unknown: a reference point, not a same-run comparison.'
      : '',
    '',
  ]
    .filter((line, i, all) => !(line === '' && all[i - 1] === ''))
    .join('\n');
}
