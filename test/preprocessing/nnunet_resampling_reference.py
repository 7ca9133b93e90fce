"""Reference resampling for cross-checks: nnU-Net v2's resample_data_or_seg semantics written on
scipy.ndimage alone (skimage's resize(mode='edge', anti_aliasing=False, clip=True) is scipy's
zoom(mode='nearest', grid_mode=True) followed by a clip to the input range).

Usage: python3 nnunet_resampling_reference.py ARGS.json   (ARGS names .npy files and parameters)
       python3 nnunet_resampling_reference.py --bench ARGS.json   (prints seconds, no output file)
"""
import json
import sys
import time

import numpy as np
from scipy import ndimage as ndi


def resize(img, new_shape, order):
    zoom = [1 / (i / o) for i, o in zip(img.shape, new_shape)]
    out = ndi.zoom(img, zoom, order=order, mode='nearest', grid_mode=True)
    assert out.shape == tuple(new_shape), (out.shape, new_shape)
    np.clip(out, img.min(), img.max(), out=out)
    return out


def resize_segmentation(seg, new_shape, order):
    if order == 0:
        return resize(seg.astype(float), new_shape, 0).astype(seg.dtype)
    out = np.zeros(new_shape, dtype=seg.dtype)
    for label in np.unique(seg):
        m = resize((seg == label).astype(float), new_shape, order)
        out[m >= 0.5] = label
    return out


def z_coordinates(shape_in, shape_out):
    grids = np.mgrid[tuple(slice(0, n) for n in shape_out)].astype(float)
    for d in range(3):
        grids[d] = float(shape_in[d]) / shape_out[d] * (grids[d] + 0.5) - 0.5
    return grids


def resample(data, new_shape, is_seg, axis, order, order_z):
    """data (c, x, y, z); axis None means no separate z."""
    fn = resize_segmentation if is_seg else resize
    new_shape = np.array(new_shape)
    shape = np.array(data.shape[1:])
    if np.all(shape == new_shape):
        return data
    dtype = data.dtype
    data = data.astype(float)
    out = np.zeros((data.shape[0], *new_shape), dtype=dtype)
    for c in range(data.shape[0]):
        if axis is None:
            out[c] = fn(data[c], new_shape, order)
            continue
        mid_shape = new_shape.copy()
        mid_shape[axis] = shape[axis]
        in_plane = [d for d in range(3) if d != axis]
        mid = np.zeros(mid_shape)
        for s in range(shape[axis]):
            idx = [slice(None)] * 3
            idx[axis] = s
            mid[tuple(idx)] = fn(data[c][tuple(idx)], mid_shape[in_plane], order)
        if shape[axis] == new_shape[axis]:
            out[c] = mid
            continue
        coords = z_coordinates(mid.shape, new_shape)
        if not is_seg or order_z == 0:
            out[c] = ndi.map_coordinates(mid, coords, order=order_z, mode='nearest')
        else:
            for label in np.sort(np.unique(mid)):
                m = np.round(ndi.map_coordinates((mid == label).astype(float), coords, order=order_z, mode='nearest'))
                out[c][m > 0.5] = label
    return out


def main():
    bench = sys.argv[1] == '--bench'
    args = json.load(open(sys.argv[-1]))
    data = np.load(args['input'])
    t0 = time.perf_counter()
    if args.get('op') == 'resize':
        # one skimage-style resize of the first channel: a single 3D zoom, whatever the spacing
        out = resize(data[0].astype(float), args['new_shape'], args['order'])
    else:
        out = resample(data, args['new_shape'], args['is_seg'], args['axis'], args['order'], args['order_z'])
    seconds = time.perf_counter() - t0
    if bench:
        print(json.dumps({'seconds': seconds, 'shape': list(out.shape)}))
    else:
        np.save(args['output'], out)


if __name__ == '__main__':
    main()
