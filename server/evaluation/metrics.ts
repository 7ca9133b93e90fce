// Segmentation metrics as nnU-Net v2 computes them (REFERENCE §8.1, evaluate_predictions.py):
// per label or region TP/FP/FN/TN outside the ignore label, Dice and IoU that are NaN when the
// structure is absent in both reference and prediction, nanmean over cases, plain mean over classes.

/** A label (label mode) or a region: the labels whose union forms the mask (region mode). */
export type LabelOrRegion = number | number[];

export interface Metrics {
  TP: number;
  FP: number;
  FN: number;
  TN: number;
  Dice: number;
  IoU: number;
  n_pred: number;
  n_ref: number;
}

export const METRIC_NAMES: (keyof Metrics)[] = ['Dice', 'FN', 'FP', 'IoU', 'TN', 'TP', 'n_pred', 'n_ref'];

/** The key nnU-Net uses in summary.json: `str(label)` or Python's tuple repr for a region. */
export function labelOrRegionKey(r: LabelOrRegion): string {
  if (!Array.isArray(r)) return String(r);
  return r.length === 1 ? `(${r[0]},)` : `(${r.join(', ')})`;
}

/** Membership table for a label or region, so the voxel loop is one lookup. */
function membership(r: LabelOrRegion, maxLabel: number): Uint8Array {
  const table = new Uint8Array(maxLabel + 2);
  for (const l of Array.isArray(r) ? r : [r]) if (l >= 0 && l <= maxLabel) table[l] = 1;
  return table;
}

function maxOf(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

/** Metrics of one case for each label/region. `reference` and `prediction` are label maps of equal length. */
export function computeCaseMetrics(
  reference: ArrayLike<number>,
  prediction: ArrayLike<number>,
  labelsOrRegions: LabelOrRegion[],
  ignoreLabel?: number,
): Map<string, Metrics> {
  if (reference.length !== prediction.length) {
    throw new RangeError(`reference has ${reference.length} voxels but prediction has ${prediction.length}`);
  }
  const maxLabel = Math.max(maxOf(reference), maxOf(prediction), ...labelsOrRegions.flat());
  const result = new Map<string, Metrics>();
  for (const r of labelsOrRegions) {
    const inR = membership(r, maxLabel);
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let tn = 0;
    for (let i = 0; i < reference.length; i++) {
      const ref = reference[i];
      if (ref === ignoreLabel) continue;
      const isRef = inR[ref] === 1;
      const isPred = inR[prediction[i]] === 1;
      if (isRef) {
        if (isPred) tp++;
        else fn++;
      } else if (isPred) fp++;
      else tn++;
    }
    const absent = tp + fp + fn === 0;
    result.set(labelOrRegionKey(r), {
      TP: tp,
      FP: fp,
      FN: fn,
      TN: tn,
      Dice: absent ? NaN : (2 * tp) / (2 * tp + fp + fn),
      IoU: absent ? NaN : tp / (tp + fp + fn),
      n_pred: tp + fp,
      n_ref: tp + fn,
    });
  }
  return result;
}

const nanmean = (values: number[]): number => {
  const finite = values.filter((v) => !Number.isNaN(v));
  return finite.length === 0 ? NaN : finite.reduce((a, b) => a + b, 0) / finite.length;
};

export interface CaseResult {
  reference_file: string;
  prediction_file: string;
  metrics: Record<string, Metrics>;
}

export interface Summary {
  foreground_mean: Metrics;
  mean: Record<string, Metrics>;
  metric_per_case: CaseResult[];
}

/** Aggregates per-case results as nnU-Net does: nanmean over cases, then the plain mean over classes. */
export function summarize(cases: CaseResult[], keys: string[]): Summary {
  const mean: Record<string, Metrics> = {};
  for (const key of keys) {
    const m = {} as Metrics;
    for (const name of METRIC_NAMES) m[name] = nanmean(cases.map((c) => c.metrics[key][name]));
    mean[key] = m;
  }
  const foreground = keys.filter((k) => k !== '0');
  const foreground_mean = {} as Metrics;
  for (const name of METRIC_NAMES) {
    foreground_mean[name] = foreground.length === 0 ? NaN : foreground.reduce((s, k) => s + mean[k][name], 0) / foreground.length;
  }
  return { foreground_mean, mean, metric_per_case: cases };
}
