// Postprocessing as nnU-Net v2 determines and applies it (REFERENCE §8.2): try "keep the largest
// foreground component" for all foreground labels at once, then per label/region, keeping each
// step only if Dice strictly improves; the decision is stored as postprocessing.json, which is
// what we read back (nnU-Net's postprocessing.pkl pickles Python functions, unusable outside it).
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import type { LabelManager } from '../dataset/labels.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readNifti, writeNifti } from '../io/nifti.js';
import { dumpPythonJson, parsePythonJson } from '../util/pyjson.js';
import { removeAllButLargestComponent } from './connected-components.js';
import { evaluateFolder } from './evaluate-folder.js';
import { labelOrRegionKey, type LabelOrRegion, type Summary } from './metrics.js';

export const LARGEST_COMPONENT_FN = 'remove_all_but_largest_component_from_segmentation';

export interface PostprocessingStep {
  fn: typeof LARGEST_COMPONENT_FN;
  labelsOrRegions: LabelOrRegion | LabelOrRegion[];
}

export interface PostprocessingJson {
  input_folder: Pick<Summary, 'foreground_mean' | 'mean'>;
  postprocessed: Pick<Summary, 'foreground_mean' | 'mean'>;
  postprocessing_fns: string[];
  postprocessing_kwargs: { labels_or_regions: LabelOrRegion | LabelOrRegion[] }[];
}

/** Segmentations are written as uint8 when every label fits, else uint16 (nnU-Net's rule). */
export function segmentationDatatype(seg: ArrayLike<number>): 'uint8' | 'uint16' {
  let max = 0;
  for (let i = 0; i < seg.length; i++) if (seg[i] > max) max = seg[i];
  return max < 255 ? 'uint8' : 'uint16';
}

/** Applies steps in order to one segmentation file, writing the result (same geometry) to `outFile`. */
export async function postprocessFile(inFile: string, outFile: string, steps: PostprocessingStep[]): Promise<void> {
  const img = await readNifti(inFile);
  let seg = Uint16Array.from(img.data as ArrayLike<number>);
  for (const step of steps) seg = removeAllButLargestComponent(seg, img.shape, step.labelsOrRegions as number[]);
  await writeNifti(outFile, { ...img, data: seg }, { datatype: segmentationDatatype(seg) });
}

/** Applies steps to every `fileEnding` file of `inFolder`, writing to `outFolder`. */
export async function applyPostprocessingToFolder(inFolder: string, outFolder: string, fileEnding: string, steps: PostprocessingStep[], concurrency = 4): Promise<string[]> {
  const files = readdirSync(inFolder).filter((f) => f.endsWith(fileEnding)).sort();
  mkdirSync(outFolder, { recursive: true });
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, files.length) }, async () => {
      while (next < files.length) {
        const f = files[next++];
        await postprocessFile(join(inFolder, f), join(outFolder, f), steps);
      }
    }),
  );
  return files;
}

export interface DetermineOptions {
  predictionFolder: string;
  referenceFolder: string;
  labels: LabelManager;
  fileEnding: string;
  concurrency?: number;
}

const means = (s: Summary) => ({ foreground_mean: s.foreground_mean, mean: s.mean });

/** Chooses postprocessing on cross-validation predictions; writes `postprocessed/` and postprocessing.json. */
export async function determinePostprocessing(o: DetermineOptions): Promise<{ steps: PostprocessingStep[]; json: PostprocessingJson }> {
  const regions = o.labels.foregroundRegions as LabelOrRegion[];
  const evalOptions = { fileEnding: o.fileEnding, labelsOrRegions: regions, ignoreLabel: o.labels.ignoreLabel, concurrency: o.concurrency, chill: true };
  const baseline = await evaluateFolder(o.referenceFolder, o.predictionFolder, { ...evalOptions, outputFile: join(o.predictionFolder, 'summary.json') });
  const work = await mkdtemp(join(dirname(o.predictionFolder), '.postprocessing-'));
  try {
    const steps: PostprocessingStep[] = [];
    let source = o.predictionFolder;
    let current = baseline;
    let attempt = 0;
    const tryStep = async (step: PostprocessingStep) => {
      const out = join(work, String(attempt++));
      await applyPostprocessingToFolder(source, out, o.fileEnding, [step], o.concurrency);
      return { out, summary: await evaluateFolder(o.referenceFolder, out, evalOptions) };
    };
    // A: all foreground labels as one mask (labels even for region datasets, as nnU-Net does)
    const all = await tryStep({ fn: LARGEST_COMPONENT_FN, labelsOrRegions: o.labels.foregroundLabels });
    const noClassWorse = regions.every((r) => !(all.summary.mean[labelOrRegionKey(r)].Dice < current.mean[labelOrRegionKey(r)].Dice));
    if (all.summary.foreground_mean.Dice > current.foreground_mean.Dice && noClassWorse) {
      steps.push({ fn: LARGEST_COMPONENT_FN, labelsOrRegions: o.labels.foregroundLabels });
      source = all.out;
      current = all.summary;
    }
    // B: each label/region on its own, cumulatively
    if (regions.length > 1) {
      for (const r of regions) {
        const key = labelOrRegionKey(r);
        const candidate = await tryStep({ fn: LARGEST_COMPONENT_FN, labelsOrRegions: r });
        if (candidate.summary.mean[key].Dice > current.mean[key].Dice) {
          steps.push({ fn: LARGEST_COMPONENT_FN, labelsOrRegions: r });
          source = candidate.out;
          current = candidate.summary;
        }
      }
    }
    const postprocessedFolder = join(o.predictionFolder, 'postprocessed');
    rmSync(postprocessedFolder, { recursive: true, force: true });
    await applyPostprocessingToFolder(o.predictionFolder, postprocessedFolder, o.fileEnding, steps, o.concurrency);
    await writeFileAtomic(join(postprocessedFolder, 'summary.json'), dumpPythonJson(current));
    const json: PostprocessingJson = {
      input_folder: means(baseline),
      postprocessed: means(current),
      postprocessing_fns: steps.map((s) => s.fn),
      postprocessing_kwargs: steps.map((s) => ({ labels_or_regions: s.labelsOrRegions })),
    };
    await writeFileAtomic(join(o.predictionFolder, 'postprocessing.json'), dumpPythonJson(json));
    return { steps, json };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Reads the steps of a postprocessing.json (ours or nnU-Net's). */
export function readPostprocessingJson(file: string): PostprocessingStep[] {
  let json: PostprocessingJson;
  try {
    json = parsePythonJson(readFileSync(file, 'utf8')) as PostprocessingJson;
  } catch (err) {
    throw new DatasetError(`cannot read postprocessing.json: ${(err as Error).message}`, file);
  }
  const fns = json.postprocessing_fns;
  const kwargs = json.postprocessing_kwargs;
  if (!Array.isArray(fns) || !Array.isArray(kwargs) || fns.length !== kwargs.length) {
    throw new DatasetError('postprocessing_fns and postprocessing_kwargs must be lists of equal length', file);
  }
  return fns.map((fn, i) => {
    if (fn !== LARGEST_COMPONENT_FN) throw new DatasetError(`unsupported postprocessing function "${fn}"`, file);
    return { fn, labelsOrRegions: kwargs[i].labels_or_regions };
  });
}
