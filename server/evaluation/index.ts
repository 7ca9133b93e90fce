// Evaluation: metrics, summary.json, folder evaluation (later: postprocessing, model selection).
export { computeCaseMetrics, summarize, labelOrRegionKey, METRIC_NAMES } from './metrics.js';
export type { Metrics, Summary, CaseResult, LabelOrRegion } from './metrics.js';
export { evaluateFolder, evaluateCase } from './evaluate-folder.js';
export type { EvaluateOptions } from './evaluate-folder.js';
