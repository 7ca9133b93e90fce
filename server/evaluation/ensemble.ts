// Ensembling of prediction folders (REFERENCE §8.4, nnUNetv2_ensemble): for every case whose
// CASE.npz exists in all folders, the mean of the `probabilities`, converted to a segmentation with
// the label manager, written with the geometry stored beside the first folder's probabilities
// (our CASE.json; nnU-Net's CASE.pkl is read too). Probabilities, not logits, are averaged here.
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../dataset/errors.js';
import { parseDatasetJson, type DatasetJson } from '../dataset/dataset-json.js';
import { LabelManager } from '../dataset/labels.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeNifti } from '../io/nifti.js';
import { decodeNpz, encodeNpz } from '../io/npz.js';
import { unpickleWithNumpy } from '../io/numpy-pickle.js';
import { segmentationDatatype } from './postprocessing.js';

export interface EnsembleOptions {
  saveNpz?: boolean;
  /** dataset.json to use; default: the first folder's. */
  datasetJson?: DatasetJson;
}

interface CaseGeometry {
  affine: number[][];
  spacing: number[];
  properties: Record<string, unknown>;
}

/** Geometry of a predicted case: our CASE.json, else nnU-Net's CASE.pkl (nibabel_stuff.original_affine). */
function caseGeometry(folder: string, id: string): CaseGeometry {
  const json = join(folder, `${id}.json`);
  const pkl = join(folder, `${id}.pkl`);
  let properties: Record<string, unknown>;
  if (existsSync(json)) properties = JSON.parse(readFileSync(json, 'utf8'));
  else if (existsSync(pkl)) properties = unpickleWithNumpy(readFileSync(pkl)) as Record<string, unknown>;
  else throw new DatasetError(`no ${id}.json or ${id}.pkl with the case geometry`, folder);
  const affine = (properties.nibabel_stuff as { original_affine?: number[][] } | undefined)?.original_affine;
  if (!affine) throw new DatasetError(`case properties have no nibabel_stuff.original_affine (only NIfTI outputs are supported)`, existsSync(json) ? json : pkl);
  return { affine, spacing: properties.spacing as number[], properties };
}

const npzCases = (folder: string) => readdirSync(folder).filter((f) => f.endsWith('.npz')).map((f) => f.slice(0, -4)).sort();

export async function ensembleFolders(folders: string[], outputFolder: string, o: EnsembleOptions = {}): Promise<string[]> {
  if (folders.length < 2) throw new DatasetError('ensembling needs at least two prediction folders');
  const sets = folders.map(npzCases);
  const cases = sets[0];
  folders.forEach((f, i) => {
    if (sets[i].join() !== cases.join()) throw new DatasetError(`holds different .npz files than ${folders[0]}; every folder must have the same cases`, f);
  });
  if (cases.length === 0) throw new DatasetError('no CASE.npz files (predict with --save_probabilities)', folders[0]);
  const djFile = join(folders[0], 'dataset.json');
  let datasetJson = o.datasetJson;
  if (!datasetJson) {
    if (!existsSync(djFile)) throw new DatasetError('dataset.json missing; pass one', folders[0]);
    const parsed = parseDatasetJson(JSON.parse(readFileSync(djFile, 'utf8')));
    if (parsed.problems.length > 0) throw new DatasetError(parsed.problems.join('; '), djFile);
    datasetJson = parsed.json;
  }
  const labels = LabelManager.fromDatasetJson(datasetJson);
  mkdirSync(outputFolder, { recursive: true });
  for (const id of cases) {
    let sum: Float32Array | undefined;
    let shape: number[] = [];
    for (const folder of folders) {
      const p = decodeNpz(readFileSync(join(folder, `${id}.npz`)), join(folder, `${id}.npz`)).probabilities;
      if (!p) throw new DatasetError('has no "probabilities" array', join(folder, `${id}.npz`));
      const data = p.data instanceof Float32Array ? p.data : Float32Array.from(p.data as ArrayLike<number>);
      if (!sum) {
        sum = Float32Array.from(data);
        shape = p.shape;
      } else {
        if (p.shape.join() !== shape.join()) throw new DatasetError(`probabilities shape (${p.shape}) differs from ${folders[0]}'s (${shape})`, join(folder, `${id}.npz`));
        for (let i = 0; i < sum.length; i++) sum[i] += data[i];
      }
    }
    const mean = sum!.map((v) => v / folders.length);
    const voxels = shape.slice(1).reduce((a, b) => a * b, 1);
    const seg = labels.probabilitiesToSegmentation(mean, voxels);
    const geom = caseGeometry(folders[0], id);
    const spatial = shape.slice(1) as [number, number, number];
    await writeNifti(join(outputFolder, id + datasetJson.file_ending), { data: seg, shape: spatial, channels: 1, spacing: geom.spacing as [number, number, number], affine: geom.affine }, { datatype: segmentationDatatype(seg) });
    if (o.saveNpz) {
      await writeFileAtomic(join(outputFolder, `${id}.npz`), encodeNpz({ probabilities: { dtype: 'float32', shape, data: mean } }, { compress: true }));
      await writeFileAtomic(join(outputFolder, `${id}.json`), JSON.stringify(geom.properties, null, 2));
    }
  }
  await writeFileAtomic(join(outputFolder, 'dataset.json'), JSON.stringify(datasetJson, null, 4));
  return cases;
}
