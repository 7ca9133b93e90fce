// Label semantics of a dataset (nnU-Net v2's LabelManager, REFERENCE §1.3): plain labels or
// regions, the ignore label, the number of segmentation heads and how probabilities become a
// label map. Everything downstream (planning, losses, inference, metrics) asks this object.
import type { DatasetJson, LabelValue } from './dataset-json.js';
import { DatasetError } from './errors.js';

const asList = (v: LabelValue): number[] => (Array.isArray(v) ? v : [v]);

export class LabelManager {
  /** Sorted unique labels (regions flattened), without the ignore label. */
  readonly allLabels: number[];
  readonly ignoreLabel: number | undefined;
  readonly hasRegions: boolean;
  /** Foreground regions in dataset.json order (region mode only), each as the labels it unites. */
  readonly regions: number[][];
  readonly regionsClassOrder: number[] | undefined;
  /** Label names by integer label (plain labels only; regions keep their own names in `regionNames`). */
  readonly labelNames: Map<number, string>;
  readonly regionNames: string[];

  constructor(labels: Record<string, LabelValue>, regionsClassOrder?: number[]) {
    const entries = Object.entries(labels).filter(([name]) => name !== 'ignore');
    const ignore = labels.ignore;
    if (ignore !== undefined && Array.isArray(ignore)) throw new DatasetError('labels.ignore must be a single integer, not a list');
    this.allLabels = [...new Set(entries.flatMap(([, v]) => asList(v)))].sort((a, b) => a - b);
    this.ignoreLabel = ignore;
    if (ignore !== undefined) {
      const expected = Math.max(...this.allLabels) + 1;
      if (ignore !== expected) {
        throw new DatasetError(`labels.ignore must be the highest label (max label + 1 = ${expected}), got ${ignore}`);
      }
    }
    this.hasRegions = entries.some(([, v]) => Array.isArray(v) && v.length > 1);
    this.labelNames = new Map();
    for (const [name, v] of entries) if (!Array.isArray(v) || v.length === 1) this.labelNames.set(asList(v)[0], name);
    const isBackground = (v: LabelValue) => asList(v).every((x) => x === 0);
    const foregroundEntries = entries.filter(([, v]) => !isBackground(v));
    this.regions = this.hasRegions ? foregroundEntries.map(([, v]) => asList(v)) : [];
    this.regionNames = this.hasRegions ? foregroundEntries.map(([name]) => name) : [];
    this.regionsClassOrder = regionsClassOrder;
    if (this.hasRegions) {
      if (!regionsClassOrder) throw new DatasetError('regions_class_order is required when labels define regions');
      if (regionsClassOrder.length !== this.regions.length) {
        throw new DatasetError(
          `regions_class_order has ${regionsClassOrder.length} entries but labels define ${this.regions.length} foreground regions`,
        );
      }
    }
  }

  static fromDatasetJson(json: Pick<DatasetJson, 'labels' | 'regions_class_order'>): LabelManager {
    return new LabelManager(json.labels, json.regions_class_order);
  }

  get hasIgnoreLabel(): boolean {
    return this.ignoreLabel !== undefined;
  }

  /** Output channels of the network: foreground regions, or every label including background. */
  get numSegmentationHeads(): number {
    return this.hasRegions ? this.regions.length : this.allLabels.length;
  }

  get foregroundLabels(): number[] {
    return this.allLabels.filter((l) => l !== 0);
  }

  /** Regions if region-based, else the foreground labels (what metrics and postprocessing iterate). */
  get foregroundRegions(): number[][] | number[] {
    return this.hasRegions ? this.regions : this.foregroundLabels;
  }

  /** Labels a segmentation file may contain: all labels plus the ignore label. */
  get expectedLabelValues(): number[] {
    return this.ignoreLabel === undefined ? this.allLabels : [...this.allLabels, this.ignoreLabel];
  }

  /** nnU-Net requires consecutive integer labels (0, 1, 2, ...); returns a problem or undefined. */
  consecutiveLabelProblem(): string | undefined {
    const values = this.expectedLabelValues;
    for (let i = 0; i < values.length; i++) {
      if (values[i] !== i) return `labels must be consecutive integers starting at 0, got [${values.join(', ')}]`;
    }
    return undefined;
  }

  /** Inference nonlinearity: sigmoid per region, softmax over labels. */
  get inferenceNonlinearity(): 'sigmoid' | 'softmax' {
    return this.hasRegions ? 'sigmoid' : 'softmax';
  }

  /**
   * Probabilities `(heads, voxels)` flattened channel-major → label map. Labels: argmax over
   * channels (first maximum wins, as numpy's argmax). Regions: zeros, then for each region in
   * order, voxels with p > 0.5 get `regions_class_order[i]` (later regions overwrite).
   */
  probabilitiesToSegmentation(probabilities: Float32Array, voxels: number): Uint16Array {
    const heads = this.numSegmentationHeads;
    if (probabilities.length !== heads * voxels) {
      throw new DatasetError(`probabilities have ${probabilities.length} values, expected ${heads} heads × ${voxels} voxels`);
    }
    const seg = new Uint16Array(voxels);
    if (this.hasRegions) {
      const order = this.regionsClassOrder as number[];
      for (let r = 0; r < heads; r++) {
        const off = r * voxels;
        for (let v = 0; v < voxels; v++) if (probabilities[off + v] > 0.5) seg[v] = order[r];
      }
      return seg;
    }
    const best = new Float32Array(probabilities.subarray(0, voxels));
    for (let c = 1; c < heads; c++) {
      const off = c * voxels;
      const label = this.allLabels[c];
      for (let v = 0; v < voxels; v++) {
        const p = probabilities[off + v];
        if (p > best[v]) {
          best[v] = p;
          seg[v] = label;
        }
      }
    }
    return seg;
  }
}
