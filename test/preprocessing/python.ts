// Runs the scipy reference resampler (nnunet_resampling_reference.py) through /usr/bin/python3 on
// arrays passed as .npy files; tests skip themselves when numpy/scipy are not importable.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeNpy, encodeNpy, type NdArray } from '../../server/io/npy.js';
import { tempDir } from '../helpers.js';

export const PYTHON = process.env.NNUNET_TEST_PYTHON ?? '/usr/bin/python3';
export const REFERENCE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'nnunet_resampling_reference.py');

let availability: string | undefined | null = null;

/** undefined when scipy can be used, else why not. */
export function scipyUnavailable(): string | undefined {
  if (availability !== null) return availability;
  const r = spawnSync(PYTHON, ['-c', 'import numpy, scipy.ndimage'], { encoding: 'utf8' });
  availability = r.status === 0 ? undefined : `${PYTHON} cannot import numpy/scipy: ${(r.stderr || String(r.error)).trim()}`;
  return availability;
}

export interface ReferenceArgs {
  op?: 'resample' | 'resize';
  new_shape?: number[];
  is_seg?: boolean;
  axis?: number | null;
  order: number;
  order_z?: number;
}

/** Runs the reference on `input` and returns its output array. */
export function pythonReference(input: NdArray, args: ReferenceArgs): NdArray {
  const { dir, cleanup } = tempDir('nnunet-scipy-');
  try {
    const files = { input: join(dir, 'in.npy'), output: join(dir, 'out.npy') };
    writeFileSync(files.input, encodeNpy(input));
    writeFileSync(join(dir, 'args.json'), JSON.stringify({ ...args, ...files }));
    const r = spawnSync(PYTHON, [REFERENCE_SCRIPT, join(dir, 'args.json')], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`reference resampler failed: ${r.stderr || r.error}`);
    return decodeNpy(readFileSync(files.output), files.output);
  } finally {
    cleanup();
  }
}

/**
 * Runs a Python snippet with numpy as `np`, the given arrays loaded by name, and returns the array
 * it assigns to `out` (saved as float32 unless it has another dtype).
 */
export function pythonEval(code: string, arrays: Record<string, NdArray>): NdArray {
  const { dir, cleanup } = tempDir('nnunet-py-');
  try {
    const loads = Object.keys(arrays).map((name) => `${name} = np.load(${JSON.stringify(join(dir, `${name}.npy`))})`);
    for (const [name, a] of Object.entries(arrays)) writeFileSync(join(dir, `${name}.npy`), encodeNpy(a));
    const script = ['import numpy as np', ...loads, code, `np.save(${JSON.stringify(join(dir, 'out.npy'))}, np.asarray(out))`].join('\n');
    const r = spawnSync(PYTHON, ['-c', script], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`python failed: ${r.stderr || r.error}`);
    return decodeNpy(readFileSync(join(dir, 'out.npy')));
  } finally {
    cleanup();
  }
}
