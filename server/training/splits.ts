// Cross-validation splits exactly as nnU-Net v2 makes them (REFERENCE §5.9, crossval_split.py and
// the trainer's do_split): 5-fold KFold(shuffle, seed 12345) over the sorted case ids, saved as
// splits_final.json; a user's file is honoured as is; folds beyond it get a seeded 80:20 split.
import { existsSync, readFileSync } from 'node:fs';
import { DatasetError } from '../dataset/errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { RandomState } from '../util/mt19937.js';

export interface Split {
  train: string[];
  val: string[];
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** scikit-learn's KFold(n_splits, shuffle=True, random_state=seed) over sorted ids. */
export function generateCrossvalSplits(caseIds: string[], nSplits = 5, seed = 12345): Split[] {
  const ids = [...caseIds].sort(byCodePoint);
  const n = ids.length;
  if (n < nSplits) throw new DatasetError(`cannot make ${nSplits} folds from ${n} case(s); at least ${nSplits} are needed`);
  const order = new RandomState(seed).permutation(n);
  const splits: Split[] = [];
  let start = 0;
  for (let f = 0; f < nSplits; f++) {
    const size = Math.floor(n / nSplits) + (f < n % nSplits ? 1 : 0);
    const valIdx = new Set(order.slice(start, start + size));
    start += size;
    splits.push({
      train: ids.filter((_, i) => !valIdx.has(i)),
      val: ids.filter((_, i) => valIdx.has(i)),
    });
  }
  return splits;
}

function validateSplits(value: unknown, file: string): Split[] {
  if (!Array.isArray(value) || value.length === 0) throw new DatasetError('must be a non-empty list of {"train": [...], "val": [...]}', file);
  value.forEach((s, i) => {
    const ok = s && Array.isArray(s.train) && Array.isArray(s.val) && [...s.train, ...s.val].every((x: unknown) => typeof x === 'string');
    if (!ok) throw new DatasetError(`fold ${i}: must be {"train": [case ids], "val": [case ids]}`, file);
  });
  return value as Split[];
}

/** Reads splits_final.json, creating it with nnU-Net's 5-fold split when missing. */
export async function loadOrCreateSplits(splitsFile: string, caseIds: string[]): Promise<Split[]> {
  if (existsSync(splitsFile)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(splitsFile, 'utf8'));
    } catch (err) {
      throw new DatasetError(`not valid JSON: ${(err as Error).message}`, splitsFile);
    }
    return validateSplits(parsed, splitsFile);
  }
  const splits = generateCrossvalSplits(caseIds);
  await writeFileAtomic(splitsFile, JSON.stringify(splits, null, 4));
  return splits;
}

/**
 * The train/val ids of one fold: `all` trains and validates on everything; a fold beyond the
 * file gets nnU-Net's random 80:20 split with RandomState(12345 + fold); unknown ids are refused.
 */
export function splitForFold(splits: Split[], fold: number | 'all', caseIds: string[]): Split {
  const sorted = [...caseIds].sort(byCodePoint);
  if (fold === 'all') return { train: sorted, val: sorted };
  if (!Number.isInteger(fold) || fold < 0) throw new DatasetError(`fold must be a non-negative integer or "all", got ${fold}`);
  let split: Split;
  if (fold < splits.length) {
    split = splits[fold];
  } else {
    const chosen = new RandomState(12345 + fold).choiceWithoutReplacement(sorted.length, Math.floor(sorted.length * 0.8));
    const inTrain = new Set(chosen);
    split = { train: chosen.map((i) => sorted[i]), val: sorted.filter((_, i) => !inTrain.has(i)) };
  }
  const known = new Set(caseIds);
  const unknown = [...split.train, ...split.val].filter((id) => !known.has(id));
  if (unknown.length > 0) throw new DatasetError(`fold ${fold} names case(s) that are not in the dataset: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}`);
  return split;
}
