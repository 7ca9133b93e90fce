import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { discoverTrainingCases, parseDatasetJson } from '../../server/dataset/index.js';
import { tempDir } from '../helpers.js';

describe('case discovery', () => {
  it('derives ids from imagesTr, orders channels by suffix and sorts by code point like Python', () => {
    const { dir, cleanup } = tempDir();
    try {
      mkdirSync(join(dir, 'imagesTr'));
      for (const f of ['b_1_0001.nii.gz', 'b_1_0000.nii.gz', 'B_2_0000.nii.gz', 'a_0000.nii.gz', 'a_0000.nii', 'readme.txt', 'x.nii.gz']) {
        writeFileSync(join(dir, 'imagesTr', f), '');
      }
      const { json } = parseDatasetJson({ channel_names: { 0: 'a', 1: 'b' }, labels: { background: 0 }, numTraining: 3, file_ending: '.nii.gz' });
      const cases = discoverTrainingCases(dir, json);
      assert.deepEqual(cases.map((c) => c.id), ['B_2', 'a', 'b_1']);
      assert.deepEqual(cases[2].images.map((p) => p.slice(dir.length + 1)), ['imagesTr/b_1_0000.nii.gz', 'imagesTr/b_1_0001.nii.gz']);
      assert.equal(cases[1].label, join(dir, 'labelsTr', 'a.nii.gz'));
    } finally {
      cleanup();
    }
  });

  it('uses the explicit "dataset" mapping with relative paths and $VARS', () => {
    const { json } = parseDatasetJson({
      channel_names: { 0: 'CT' }, labels: { background: 0 }, numTraining: 1, file_ending: '.nii.gz',
      dataset: { c1: { images: ['$DATA/c1.nii.gz'], label: 'labels/c1.nii.gz' } },
    });
    const cases = discoverTrainingCases('/ds', json, { DATA: '/mnt/data' });
    assert.deepEqual(cases, [{ id: 'c1', images: ['/mnt/data/c1.nii.gz'], label: '/ds/labels/c1.nii.gz' }]);
  });
});
