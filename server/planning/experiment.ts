// Planning a dataset on disk, as nnUNetv2_plan_experiment does: read the raw dataset.json and the
// fingerprint, plan, copy dataset.json (and a raw splits_final.json) to nnUNet_preprocessed, and
// save <plans_name>.json keeping custom configurations of an existing plans file.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataRoots, findDataset, loadDatasetJson } from '../dataset/index.js';
import { DatasetError } from '../dataset/errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadFingerprint } from './fingerprint.js';
import { planExperiment, type PlanOptions } from './planner.js';
import { loadPlans, savePlans, type Plans } from './plans.js';

export interface PlanDatasetResult {
  plans: Plans;
  file: string;
  datasetName: string;
  /** Configurations kept from an existing plans file because this run did not produce them. */
  keptConfigurations: string[];
}

type Split = { train: string[]; val: string[] };

/** Copies the raw splits file, or checks that an existing one agrees on every fold it defines. */
async function copySplits(source: string, target: string): Promise<void> {
  const bytes = await readFile(source);
  if (!existsSync(target)) {
    await writeFileAtomic(target, bytes);
    return;
  }
  const parse = async (file: string, text: string): Promise<Split[]> => {
    try {
      return JSON.parse(text) as Split[];
    } catch (err) {
      throw new DatasetError(`not valid JSON: ${(err as Error).message}`, file);
    }
  };
  const src = await parse(source, bytes.toString('utf8'));
  const dst = await parse(target, await readFile(target, 'utf8'));
  const same = (a: string[] = [], b: string[] = []) => a.length === b.length && new Set([...a, ...b]).size === new Set(a).size;
  src.forEach((fold, i) => {
    if (!dst[i] || !same(fold.train, dst[i].train) || !same(fold.val, dst[i].val)) {
      throw new DatasetError(`fold ${i} differs from the raw dataset's splits_final.json (${source}); delete one of them`, target);
    }
  });
}

export async function planDataset(dataset: string, options: PlanOptions & { env?: NodeJS.ProcessEnv } = {}): Promise<PlanDatasetResult> {
  const roots = dataRoots(options.env ?? process.env);
  const location = findDataset(dataset, roots.raw);
  const { json, sourceFormat } = loadDatasetJson(location.folder);
  const outFolder = join(roots.preprocessed, location.name);
  const fingerprint = await loadFingerprint(join(outFolder, 'dataset_fingerprint.json'));

  const rawSplits = join(location.folder, 'splits_final.json');
  if (existsSync(rawSplits)) await copySplits(rawSplits, join(outFolder, 'splits_final.json'));

  const plans = planExperiment(location.name, fingerprint, json, options);
  const file = join(outFolder, `${plans.plans_name}.json`);
  const keptConfigurations: string[] = [];
  if (existsSync(file)) {
    // Like nnU-Net, a rerun replaces its own configurations and keeps hand-made ones.
    const old = await loadPlans(file);
    for (const [name, c] of Object.entries(old.configurations)) {
      if (name in plans.configurations) continue;
      plans.configurations[name] = c;
      keptConfigurations.push(name);
    }
  }
  // A v1 dataset.json is written converted, so that later stages read v2 keys.
  const datasetJsonText = sourceFormat === 'v1' ? JSON.stringify(json, null, 4) : await readFile(join(location.folder, 'dataset.json'));
  await writeFileAtomic(join(outFolder, 'dataset.json'), datasetJsonText);
  await savePlans(file, plans);
  return { plans, file, datasetName: location.name, keptConfigurations };
}
