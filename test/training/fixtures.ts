// A tiny trainable dataset for the trainer tests: synthetic phantoms written as a raw nnU-Net
// dataset, fingerprinted, planned and preprocessed by our own stages, with the plan shrunk to a
// 3-stage U-Net of 4/8/16 features on a small patch (3d_fullres and 2d) so a fold trains in seconds
// on two cores.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractFingerprint } from '../../server/planning/fingerprint.js';
import { planDataset } from '../../server/planning/experiment.js';
import { preprocessDataset } from '../../server/preprocessing/preprocess-dataset.js';
import { writeSyntheticDataset } from '../fixtures/synthetic.js';

export interface TrainingFixture {
  env: NodeJS.ProcessEnv;
  datasetName: string;
  preprocessed: string;
  results: string;
}

export interface TrainingFixtureOptions {
  id?: number;
  cases?: number;
  shape?: [number, number, number];
  labels?: number;
  patch?: [number, number, number];
  features?: number[];
  batchSize?: number;
  noise?: number;
  /** Also a 3d_lowres (on the same preprocessed data) with next_stage 3d_cascade_fullres, and that cascade stage. */
  cascade?: boolean;
}

/** Raw → fingerprint → plans (shrunk) → preprocessed 3d_fullres and 2d, under `root`. */
export async function makeTrainingFixture(root: string, o: TrainingFixtureOptions = {}): Promise<TrainingFixture> {
  const id = o.id ?? 951;
  const env = { nnUNet_raw: join(root, 'raw'), nnUNet_preprocessed: join(root, 'preprocessed'), nnUNet_results: join(root, 'results') };
  await writeSyntheticDataset(env.nnUNet_raw, { id, name: 'TrainPhantom', cases: o.cases ?? 10, shape: o.shape ?? [20, 24, 24], labels: o.labels ?? 1, noise: o.noise ?? 0.05, seed: 7 });
  const { datasetName } = await extractFingerprint(String(id), { env, numProcesses: 1, foregroundSamplesTotal: 1e5 });
  const planned = await planDataset(String(id), { env });
  const plans = JSON.parse(readFileSync(planned.file, 'utf8'));
  const features = o.features ?? [4, 8, 16];
  const n = features.length;
  for (const name of Object.keys(plans.configurations)) {
    const c = plans.configurations[name];
    if (name !== '3d_fullres' && name !== '2d') {
      delete plans.configurations[name];
      continue;
    }
    const dims = name === '2d' ? 2 : 3;
    const per = (v: number) => new Array(dims).fill(v);
    c.patch_size = dims === 2 ? (o.patch ?? [16, 16, 16]).slice(1) : (o.patch ?? [16, 16, 16]);
    c.batch_size = o.batchSize ?? 2;
    const kw = c.architecture.arch_kwargs;
    kw.n_stages = n;
    kw.features_per_stage = features;
    kw.kernel_sizes = Array.from({ length: n }, () => per(3));
    kw.strides = Array.from({ length: n }, (_, i) => per(i === 0 ? 1 : 2));
    kw.n_conv_per_stage = new Array(n).fill(2);
    kw.n_conv_per_stage_decoder = new Array(n - 1).fill(2);
  }
  if (o.cascade) {
    // Same grid as 3d_fullres, so no second preprocessing is needed; only the stage links matter here.
    plans.configurations['3d_lowres'] = { ...structuredClone(plans.configurations['3d_fullres']), next_stage: '3d_cascade_fullres' };
    plans.configurations['3d_cascade_fullres'] = { inherits_from: '3d_fullres', previous_stage: '3d_lowres' };
  }
  writeFileSync(planned.file, JSON.stringify(plans, null, 4));
  await preprocessDataset(String(id), ['3d_fullres', '2d'], 1, { env });
  const preprocessed = join(env.nnUNet_preprocessed, datasetName);
  if (!existsSync(join(preprocessed, 'gt_segmentations'))) throw new Error('fixture: preprocessing wrote no gt_segmentations');
  return { env, datasetName, preprocessed, results: join(env.nnUNet_results, datasetName) };
}
