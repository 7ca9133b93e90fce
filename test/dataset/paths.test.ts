import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dataRoots, datasetFolderName, findDataset, listDatasets } from '../../server/dataset/index.js';
import { tempDir } from '../helpers.js';

describe('dataset roots and lookup', () => {
  it('uses nnUNet_raw/_preprocessed/_results when set, else folders under NNUNET_HOME', () => {
    assert.deepEqual(dataRoots({ nnUNet_raw: '/r', nnUNet_preprocessed: '/p', nnUNet_results: '/s' }), { raw: '/r', preprocessed: '/p', results: '/s' });
    assert.deepEqual(dataRoots({ NNUNET_HOME: '/h', nnUNet_results: '/s' }), { raw: '/h/nnUNet_raw', preprocessed: '/h/nnUNet_preprocessed', results: '/s' });
    assert.equal(dataRoots({}).raw, resolve('nnunet_data', 'nnUNet_raw'));
  });

  it('finds a dataset by id or by full name; v2 wins over a v1 Task folder of the same id', () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const n of ['Dataset004_Hippocampus', 'Task004_Hippocampus', 'Task005_Prostate', 'Dataset010_X', 'notadataset']) mkdirSync(join(dir, n));
      assert.deepEqual(listDatasets(dir).map((d) => d.name), ['Dataset004_Hippocampus', 'Task004_Hippocampus', 'Task005_Prostate', 'Dataset010_X']);
      assert.equal(findDataset('4', dir).name, 'Dataset004_Hippocampus');
      assert.equal(findDataset('004', dir).name, 'Dataset004_Hippocampus');
      assert.equal(findDataset('Task004_Hippocampus', dir).format, 'v1');
      assert.equal(findDataset('5', dir).name, 'Task005_Prostate');
      assert.throws(() => findDataset('7', dir), /no dataset with id 7 .*Dataset004_Hippocampus/);
      assert.throws(() => findDataset('Hippo', dir), /not found/);
      mkdirSync(join(dir, 'Dataset004_Other'));
      assert.throws(() => findDataset('4', dir), /ambiguous/);
    } finally {
      cleanup();
    }
  });

  it('builds canonical folder names and refuses unsafe ones', () => {
    assert.equal(datasetFolderName(4, 'Hippocampus'), 'Dataset004_Hippocampus');
    assert.throws(() => datasetFolderName(1000, 'X'), /0\.\.999/);
    assert.throws(() => datasetFolderName(5, '../etc'), /may only contain/);
  });
});
