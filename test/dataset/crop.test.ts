// Crop to nonzero: hole filling with face connectivity (scipy's binary_fill_holes), half-open
// bounding boxes, seg −1 outside the mask — checked on hand-built volumes and against scipy.
import { strict as assert } from 'node:assert';
import { boundingBox, cropToNonzero, cropVolume, fillHoles, nonzeroMask, type Shape3 } from '../../server/dataset/crop.js';
import { mulberry32 } from '../fixtures/synthetic.js';
import { pythonEval, scipyUnavailable } from '../preprocessing/python.js';

const idx = (shape: Shape3, a: number, b: number, c: number) => (a * shape[1] + b) * shape[2] + c;

describe('dataset/crop', () => {
  it('fills a cavity enclosed by a shell but not background that touches the border', () => {
    const shape: Shape3 = [5, 5, 5];
    const mask = new Uint8Array(125);
    for (let a = 1; a <= 3; a++) for (let b = 1; b <= 3; b++) for (let c = 1; c <= 3; c++) mask[idx(shape, a, b, c)] = 1;
    mask[idx(shape, 2, 2, 2)] = 0; // the cavity
    const filled = fillHoles(mask, shape);
    assert.equal(filled[idx(shape, 2, 2, 2)], 1);
    assert.equal(filled[idx(shape, 0, 0, 0)], 0);
    assert.equal(filled.reduce((s, v) => s + v, 0), 27);
  });

  it('keeps a cavity that touches the outside only diagonally a hole (face connectivity)', () => {
    // Caps on slices 0 and 2, a ring on slice 1 around the centre with one corner missing: the
    // corner voxel reaches the outside through a face, the centre touches it only along an edge.
    const shape: Shape3 = [3, 5, 5];
    const mask = new Uint8Array(75);
    for (let b = 1; b <= 3; b++) {
      for (let c = 1; c <= 3; c++) {
        mask[idx(shape, 0, b, c)] = 1;
        mask[idx(shape, 2, b, c)] = 1;
        mask[idx(shape, 1, b, c)] = 1;
      }
    }
    mask[idx(shape, 1, 2, 2)] = 0;
    mask[idx(shape, 1, 1, 1)] = 0;
    const filled = fillHoles(mask, shape);
    assert.equal(filled[idx(shape, 1, 2, 2)], 1, 'the centre is a hole');
    assert.equal(filled[idx(shape, 1, 1, 1)], 0, 'the open corner is not');
  });

  it('never fills anything in a single slice: every voxel is on the border of axis 0', () => {
    const shape: Shape3 = [1, 3, 3];
    const mask = Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1, 1]);
    assert.equal(fillHoles(mask, shape)[4], 0);
  });

  it('gives a half-open bounding box, and the whole volume for an empty mask', () => {
    const shape: Shape3 = [4, 6, 8];
    const mask = new Uint8Array(4 * 6 * 8);
    mask[idx(shape, 1, 2, 3)] = 1;
    mask[idx(shape, 2, 4, 6)] = 1;
    assert.deepEqual(boundingBox(mask, shape), [[1, 3], [2, 5], [3, 7]]);
    assert.deepEqual(boundingBox(new Uint8Array(4 * 6 * 8), shape), [[0, 4], [0, 6], [0, 8]]);
  });

  it('crops every channel to the OR of their nonzero masks and marks seg 0 outside it as -1', () => {
    const shape: Shape3 = [3, 4, 5];
    const a = new Float32Array(60);
    const b = new Float32Array(60);
    a[idx(shape, 1, 1, 1)] = 5;
    b[idx(shape, 1, 2, 3)] = -2;
    const seg = new Uint8Array(60);
    seg[idx(shape, 1, 1, 1)] = 1;
    const out = cropToNonzero([a, b], seg, shape);
    assert.deepEqual(out.bbox, [[1, 2], [1, 3], [1, 4]]);
    assert.deepEqual(out.shapeAfterCropping, [1, 2, 3]);
    assert.deepEqual([...out.images[0]], [5, 0, 0, 0, 0, 0]);
    assert.deepEqual([...out.images[1]], [0, 0, 0, 0, 0, -2]);
    assert.deepEqual([...out.seg], [1, -1, -1, -1, -1, 0]);
    assert.deepEqual(nonzeroMask([a, b], shape).reduce((s, v) => s + v, 0), 2);
  });

  it('creates the inference segmentation (0 inside, -1 outside) when none is given', () => {
    const shape: Shape3 = [1, 2, 3];
    const out = cropToNonzero([Float32Array.from([0, 1, 0, 1, 0, 0])], undefined, shape);
    assert.deepEqual(out.bbox, [[0, 1], [0, 2], [0, 2]]);
    assert.deepEqual([...out.seg], [-1, 0, 0, -1]);
  });

  it('copies boxes out of any typed array', () => {
    const v = Int16Array.from({ length: 24 }, (_, i) => i);
    assert.deepEqual([...cropVolume(v, [2, 3, 4], [[1, 2], [0, 2], [1, 3]])], [13, 14, 17, 18]);
  });

  it('fills holes exactly like scipy.ndimage.binary_fill_holes on random volumes', function () {
    const why = scipyUnavailable();
    if (why) this.skip();
    const shape: Shape3 = [9, 11, 13];
    const rand = mulberry32(7);
    for (let trial = 0; trial < 3; trial++) {
      const mask = Uint8Array.from({ length: 9 * 11 * 13 }, () => (rand() < 0.55 + 0.1 * trial ? 1 : 0));
      const ref = pythonEval('from scipy.ndimage import binary_fill_holes\nout = binary_fill_holes(m > 0).astype(np.uint8)', {
        m: { dtype: 'uint8', shape: [...shape], data: mask },
      });
      assert.deepEqual([...fillHoles(mask, shape)], [...(ref.data as Uint8Array)]);
    }
  });
});
