import assert from 'node:assert/strict';
import { LabelManager, parseDatasetJson } from '../../server/dataset/index.js';

describe('dataset.json parsing', () => {
  it('accepts a valid v2 file and reports nothing', () => {
    const { problems, sourceFormat } = parseDatasetJson({ channel_names: { 0: 'MRI' }, labels: { background: 0, a: 1 }, numTraining: 3, file_ending: '.nii.gz' });
    assert.deepEqual(problems, []);
    assert.equal(sourceFormat, 'v2');
  });

  it('collects every problem instead of stopping at the first', () => {
    const { problems } = parseDatasetJson({ channel_names: { 1: 'CT' }, labels: { background: 1, a: -2, r: [] }, numTraining: 'x' });
    assert.ok(problems.some((p) => p.startsWith('file_ending: required')));
    assert.ok(problems.some((p) => p.startsWith('channel_names: keys must be')));
    assert.ok(problems.some((p) => p.startsWith('labels.background: must be 0')));
    assert.ok(problems.some((p) => p.startsWith('labels.a:')));
    assert.ok(problems.some((p) => p.startsWith('labels.r:')));
    assert.ok(problems.some((p) => p.startsWith('numTraining:')));
  });

  it('converts a v1/MSD dataset.json (modality, int→name labels) on the fly', () => {
    const { json, sourceFormat, problems } = parseDatasetJson({
      name: 'Prostate', modality: { 0: 'T2', 1: 'ADC' }, labels: { 0: 'background', 1: 'PZ', 2: 'TZ' }, numTraining: 32, numTest: 16,
      training: [{ image: './imagesTr/prostate_00.nii.gz', label: './labelsTr/prostate_00.nii.gz' }],
    });
    assert.equal(sourceFormat, 'v1');
    assert.deepEqual(problems, []);
    assert.deepEqual(json.channel_names, { 0: 'T2', 1: 'ADC' });
    assert.deepEqual(json.labels, { background: 0, PZ: 1, TZ: 2 });
    assert.equal(json.file_ending, '.nii.gz');
    assert.equal(json.name, 'Prostate');
    assert.ok(!('training' in json) && !('modality' in json));
  });
});

describe('LabelManager', () => {
  it('plain labels: heads include background, argmax picks the label', () => {
    const lm = new LabelManager({ background: 0, anterior: 1, posterior: 2 });
    assert.equal(lm.hasRegions, false);
    assert.equal(lm.numSegmentationHeads, 3);
    assert.deepEqual(lm.foregroundLabels, [1, 2]);
    assert.equal(lm.inferenceNonlinearity, 'softmax');
    // 3 voxels; channel-major probabilities
    const p = Float32Array.from([0.7, 0.1, 0.2, /* c1 */ 0.2, 0.8, 0.4, /* c2 */ 0.1, 0.1, 0.4]);
    assert.deepEqual([...lm.probabilitiesToSegmentation(p, 3)], [0, 1, 1]); // tie 0.4/0.4: first maximum wins
  });

  it('regions: sigmoid heads, painted in regions_class_order with later regions overwriting', () => {
    const lm = new LabelManager({ background: 0, whole_tumor: [1, 2, 3], tumor_core: [2, 3], enhancing_tumor: 3 }, [1, 2, 3]);
    assert.equal(lm.hasRegions, true);
    assert.deepEqual(lm.regions, [[1, 2, 3], [2, 3], [3]]);
    assert.equal(lm.numSegmentationHeads, 3);
    assert.equal(lm.inferenceNonlinearity, 'sigmoid');
    const p = Float32Array.from([0.9, 0.9, 0.2, /* core */ 0.1, 0.8, 0.9, /* enh */ 0.0, 0.7, 0.9]);
    assert.deepEqual([...lm.probabilitiesToSegmentation(p, 3)], [1, 3, 3]);
    assert.throws(() => new LabelManager({ background: 0, a: [1, 2], b: 2 }), /regions_class_order is required/);
    assert.throws(() => new LabelManager({ background: 0, a: [1, 2], b: 2 }, [1]), /has 1 entries but labels define 2/);
  });

  it('ignore label must be max label + 1 and is excluded from heads', () => {
    const lm = new LabelManager({ background: 0, a: 1, ignore: 2 });
    assert.equal(lm.ignoreLabel, 2);
    assert.equal(lm.numSegmentationHeads, 2);
    assert.deepEqual(lm.expectedLabelValues, [0, 1, 2]);
    assert.throws(() => new LabelManager({ background: 0, a: 1, ignore: 5 }), /max label \+ 1 = 2/);
  });

  it('reports non-consecutive labels', () => {
    assert.equal(new LabelManager({ background: 0, a: 1, b: 2 }).consecutiveLabelProblem(), undefined);
    assert.match(new LabelManager({ background: 0, a: 1, b: 3 }).consecutiveLabelProblem() ?? '', /consecutive .*\[0, 1, 3\]/);
  });
});
