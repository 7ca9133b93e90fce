// Model selection as nnU-Net v2's find_best_configuration (REFERENCE §8.3): pool each model's
// cross-validation predictions, score by foreground_mean Dice, try every pairwise ensemble, keep
// the best (ties: first inserted, single models first), determine postprocessing on it, and write
// inference_information.json + inference_instructions.txt. Our instructions use `nnunet` commands
// and include the lowres step of a cascade (nnU-Net's generator drops it, Appendix B #7).
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import { loadDatasetJson } from '../dataset/dataset-json.js';
import { LabelManager } from '../dataset/labels.js';
import { dataRoots, findDataset } from '../dataset/paths.js';
import { writeFileAtomic } from '../io/atomic.js';
import { getConfiguration, loadPlans } from '../planning/plans.js';
import { dumpPythonJson } from '../util/pyjson.js';
import { ensembleFolders } from './ensemble.js';
import { evaluateFolder } from './evaluate-folder.js';
import { determinePostprocessing } from './postprocessing.js';

export interface ModelSpec {
  configuration: string;
  trainer: string;
  plans: string;
}

export interface FindBestOptions {
  configurations?: string[];
  trainers?: string[];
  plansIdentifiers?: string[];
  folds?: number[];
  allowEnsembling?: boolean;
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
  onProgress?: (message: string) => void;
}

export interface FindBestResult {
  allResults: Record<string, number>;
  best: string;
  bestFolder: string;
  selected: ModelSpec[];
  resultPrePostprocessing: number;
  resultPostPostprocessing: number;
}

const modelId = (m: ModelSpec) => `${m.trainer}__${m.plans}__${m.configuration}`;

/** Copies every fold's validation predictions into crossval_results_folds_X; a case in two folds is an error. */
function accumulateCrossval(modelFolder: string, folds: number[], fileEnding: string): string {
  const out = join(modelFolder, `crossval_results_folds_${folds.join('_')}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const seen = new Map<string, number>();
  for (const f of folds) {
    const validation = join(modelFolder, `fold_${f}`, 'validation');
    if (!existsSync(validation)) throw new DatasetError(`fold ${f} has no validation folder; train it (the final validation writes it)`, join(modelFolder, `fold_${f}`));
    for (const file of readdirSync(validation)) {
      const isCase = file.endsWith(fileEnding);
      if (!isCase && !file.endsWith('.npz') && !(file.endsWith('.json') && file !== 'summary.json')) continue;
      if (isCase) {
        const id = file.slice(0, -fileEnding.length);
        if (seen.has(id)) throw new DatasetError(`case ${id} is in the validation of folds ${seen.get(id)} and ${f}`, modelFolder);
        seen.set(id, f);
      }
      copyFileSync(join(validation, file), join(out, file));
    }
  }
  for (const f of ['dataset.json', 'plans.json']) if (existsSync(join(modelFolder, f))) copyFileSync(join(modelFolder, f), join(out, f));
  return out;
}

function instructions(dataset: string, selected: ModelSpec[], folds: number[], ppFile: string, plansFile: string, isEnsemble: boolean, cascadeParent: (m: ModelSpec) => string | undefined): string {
  const lines = ['***Run inference like this:***', ''];
  const predict = (m: ModelSpec, out: string, probs: boolean) => {
    const parent = cascadeParent(m);
    if (parent) {
      lines.push(`nnunet predict -d ${dataset} -i INPUT_FOLDER -o ${out}_LOWRES -f ${folds.join(' ')} -tr ${m.trainer} -c ${parent} -p ${m.plans}`);
    }
    lines.push(`nnunet predict -d ${dataset} -i INPUT_FOLDER -o ${out} -f ${folds.join(' ')} -tr ${m.trainer} -c ${m.configuration} -p ${m.plans}${probs ? ' --save_probabilities' : ''}${parent ? ` -prev_stage_predictions ${out}_LOWRES` : ''}`);
  };
  if (isEnsemble) {
    lines.push('An ensemble won. Run the predictions of its members:', '');
    selected.forEach((m, i) => predict(m, `OUTPUT_FOLDER_MODEL_${i + 1}`, true));
    lines.push('', 'Then ensemble them:', '', `nnunet ensemble -i ${selected.map((_, i) => `OUTPUT_FOLDER_MODEL_${i + 1}`).join(' ')} -o OUTPUT_FOLDER`);
  } else {
    predict(selected[0], 'OUTPUT_FOLDER', false);
  }
  lines.push('', '***Once inference is completed, run postprocessing like this:***', '', `nnunet apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_json ${ppFile} -plans_json ${plansFile}`, '');
  return lines.join('\n');
}

export async function findBestConfiguration(dataset: string, o: FindBestOptions = {}): Promise<FindBestResult> {
  const roots = dataRoots(o.env);
  const datasetName = findDataset(dataset, roots.results).name;
  const resultsFolder = join(roots.results, datasetName);
  const folds = o.folds ?? [0, 1, 2, 3, 4];
  const trainers = o.trainers ?? ['nnUNetTrainer'];
  const plansIds = o.plansIdentifiers ?? ['nnUNetPlans'];
  const configurations = o.configurations ?? ['2d', '3d_fullres', '3d_lowres', '3d_cascade_fullres'];
  const say = o.onProgress ?? (() => undefined);

  const models: (ModelSpec & { folder: string })[] = [];
  for (const trainer of trainers) {
    for (const plans of plansIds) {
      for (const configuration of configurations) {
        const m = { trainer, plans, configuration };
        const folder = join(resultsFolder, modelId(m));
        const plansFile = join(roots.preprocessed, datasetName, `${plans}.json`);
        const plansSource = existsSync(join(folder, 'plans.json')) ? join(folder, 'plans.json') : plansFile;
        if (!existsSync(plansSource)) throw new DatasetError(`plans ${plans} not found`, plansFile);
        const p = await loadPlans(plansSource);
        if (!(configuration in p.configurations)) continue; // nnU-Net skips configurations the plans lack
        if (!existsSync(folder)) throw new DatasetError(`configuration ${configuration} is in the plans but has no trained model`, folder);
        models.push({ ...m, folder });
      }
    }
  }
  if (models.length === 0) throw new DatasetError(`no trained model among ${configurations.join(', ')}`, resultsFolder);

  const first = models[0].folder;
  const { json: datasetJson } = loadDatasetJson(first);
  const labels = LabelManager.fromDatasetJson(datasetJson);
  const ending = datasetJson.file_ending;
  const gtPreprocessed = join(roots.preprocessed, datasetName, 'gt_segmentations');
  const gt = existsSync(gtPreprocessed) ? gtPreprocessed : join(findDataset(datasetName, roots.raw).folder, 'labelsTr');
  const evalOptions = { fileEnding: ending, labelsOrRegions: labels.foregroundRegions as number[], ignoreLabel: labels.ignoreLabel, concurrency: o.concurrency };

  const allResults: Record<string, number> = {};
  const folders: Record<string, string> = {};
  const members: Record<string, ModelSpec[]> = {};
  for (const m of models) {
    say(`evaluating the cross-validation of ${modelId(m)}`);
    const cv = accumulateCrossval(m.folder, folds, ending);
    const summary = await evaluateFolder(gt, cv, { ...evalOptions, outputFile: join(cv, 'summary.json') });
    allResults[modelId(m)] = summary.foreground_mean.Dice;
    folders[modelId(m)] = cv;
    members[modelId(m)] = [{ configuration: m.configuration, trainer: m.trainer, plans: m.plans }];
  }
  if (o.allowEnsembling !== false && models.length > 1) {
    for (let i = 0; i < models.length; i++) {
      for (let j = i + 1; j < models.length; j++) {
        const [a, b] = [modelId(models[i]), modelId(models[j])];
        const id = `ensemble___${a}___${b}___${folds.join('_')}`;
        say(`evaluating ${id}`);
        const out = join(resultsFolder, 'ensembles', id);
        rmSync(out, { recursive: true, force: true });
        await ensembleFolders([folders[a], folders[b]], out, { saveNpz: false, datasetJson });
        copyFileSync(join(folders[a], 'plans.json'), join(out, 'plans.json'));
        allResults[id] = (await evaluateFolder(gt, out, { ...evalOptions, outputFile: join(out, 'summary.json') })).foreground_mean.Dice;
        folders[id] = out;
        members[id] = [...members[a], ...members[b]];
      }
    }
  }
  // max with ties to the first inserted (Object key order = insertion order here)
  let best = Object.keys(allResults)[0];
  for (const [id, dice] of Object.entries(allResults)) if (dice > allResults[best]) best = id;
  say(`best: ${best} (${allResults[best].toFixed(4)}); determining postprocessing`);
  const pp = await determinePostprocessing({ predictionFolder: folders[best], referenceFolder: gt, labels, fileEnding: ending, concurrency: o.concurrency });
  const ppFile = join(folders[best], 'postprocessing.json');
  const plansFile = join(folders[best], 'plans.json');
  const selected = members[best];
  const info = {
    dataset_name_or_id: datasetName,
    considered_models: models.map((m) => ({ configuration: m.configuration, plans: m.plans, trainer: m.trainer })),
    ensembling_allowed: o.allowEnsembling !== false,
    folds,
    all_results: allResults,
    best_model_or_ensemble: {
      result_on_crossval_pre_pp: allResults[best],
      result_on_crossval_post_pp: pp.json.postprocessed.foreground_mean.Dice,
      postprocessing_file: ppFile,
      some_plans_file: plansFile,
      selected_model_or_models: selected.map((m) => ({ configuration: m.configuration, trainer: m.trainer, plans_identifier: m.plans })),
    },
  };
  await writeFileAtomic(join(resultsFolder, 'inference_information.json'), dumpPythonJson(info));
  const plans = await loadPlans(plansFile);
  const cascadeParent = (m: ModelSpec) => {
    try {
      return getConfiguration(plans, m.configuration).previous_stage ?? undefined;
    } catch {
      return undefined;
    }
  };
  await writeFileAtomic(join(resultsFolder, 'inference_instructions.txt'), instructions(datasetName, selected, folds, ppFile, plansFile, selected.length > 1, cascadeParent));
  return { allResults, best, bestFolder: folders[best], selected, resultPrePostprocessing: allResults[best], resultPostPostprocessing: pp.json.postprocessed.foreground_mean.Dice };
}
