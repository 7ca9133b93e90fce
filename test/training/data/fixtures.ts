// Tiny preprocessed datasets for the data-pipeline tests: phantoms from test/fixtures/synthetic.ts
// written as preprocessing writes them (<id>.npy, <id>_seg.npy with −1 outside the body, <id>.json
// with class_locations sampled by the preprocessing code itself).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LabelManager } from '../../../server/dataset/labels.js';
import type { LabelValue } from '../../../server/dataset/dataset-json.js';
import { writeNpz } from '../../../server/io/npz.js';
import { sampleClassLocations } from '../../../server/preprocessing/class-locations.js';
import { writePreprocessedCase } from '../../../server/preprocessing/case-files.js';
import { classesToSample } from '../../../server/preprocessing/preprocessor.js';
import { makePhantom } from '../../fixtures/synthetic.js';

export interface TinyDatasetOptions {
  cases?: number;
  shape?: [number, number, number];
  channels?: 1 | 2;
  /** Foreground labels 1..labels; default 2. */
  labels?: number;
  /** dataset.json labels; default background + 'l1'..'lN'. */
  labelDict?: Record<string, LabelValue>;
  regionsClassOrder?: number[];
  /** Turn these label values into the ignore label in every case (the ignore label must be in labelDict). */
  ignoreFrom?: number;
  /** Also write a previous-stage segmentation folder (`<folder>/prev/<id>.npz`). */
  previousStage?: boolean;
}

export interface TinyDataset {
  folder: string;
  ids: string[];
  labelManager: LabelManager;
  previousStageFolder?: string;
  shape: [number, number, number];
}

export async function writeTinyDataset(root: string, o: TinyDatasetOptions = {}): Promise<TinyDataset> {
  const shape = o.shape ?? [24, 32, 28];
  const nLabels = o.labels ?? 2;
  const labelDict = o.labelDict ?? Object.fromEntries([['background', 0], ...Array.from({ length: nLabels }, (_, i) => [`l${i + 1}`, i + 1])]);
  const labelManager = new LabelManager(labelDict, o.regionsClassOrder);
  const folder = join(root, 'nnUNetPlans_3d_fullres');
  mkdirSync(folder, { recursive: true });
  const prevFolder = o.previousStage ? join(root, 'prev') : undefined;
  if (prevFolder) mkdirSync(prevFolder, { recursive: true });
  const ids: string[] = [];
  for (let i = 0; i < (o.cases ?? 3); i++) {
    const id = `case_${String(i).padStart(3, '0')}`;
    const p = makePhantom({ shape, labels: nLabels, channels: o.channels ?? 1, bodyMask: true, seed: 100 + i });
    const n = shape[0] * shape[1] * shape[2];
    const seg = new Int16Array(n);
    const data = new Float32Array(n * p.images.length);
    p.images.forEach((im, c) => {
      let mean = 0;
      for (const v of im) mean += v / n;
      let sd = 0;
      for (const v of im) sd += (v - mean) ** 2 / n;
      for (let k = 0; k < n; k++) data[c * n + k] = (im[k] - mean) / Math.sqrt(sd);
    });
    for (let k = 0; k < n; k++) {
      seg[k] = p.images[0][k] === 0 ? -1 : p.label[k];
      if (o.ignoreFrom !== undefined && seg[k] === o.ignoreFrom) seg[k] = labelManager.ignoreLabel as number;
    }
    const properties = {
      spacing: [1, 1, 1],
      shape_before_cropping: [...shape],
      bbox_used_for_cropping: shape.map((s) => [0, s] as [number, number]),
      shape_after_cropping_and_before_resampling: [...shape],
      class_locations: sampleClassLocations(seg, shape, classesToSample(labelManager)),
    };
    await writePreprocessedCase(folder, id, data, p.images.length, shape, seg, properties);
    if (prevFolder) {
      // A "previous stage" that got label 1 right and missed everything else.
      const prev = Uint8Array.from(seg, (v) => (v === 1 ? 1 : 0));
      await writeNpz(join(prevFolder, `${id}.npz`), { seg: { dtype: 'uint8', shape: [...shape], data: prev } }, { compress: true });
    }
    ids.push(id);
  }
  return { folder, ids, labelManager, previousStageFolder: prevFolder, shape };
}
