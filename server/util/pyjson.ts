// JSON as Python's json module writes nnU-Net's result files (summary.json, postprocessing.json):
// sorted keys, 4-space indent and the NaN/Infinity literals nnU-Net writes for absent structures.
// The writer and reader are python-json.ts (shared with plans and fingerprints); this names the defaults.
import { parsePythonJson, toPythonJson } from './python-json.js';

export { parsePythonJson };

export interface DumpOptions {
  sortKeys?: boolean;
}

/** Serialises like Python's `json.dumps(obj, sort_keys=True, indent=4)`, NaN and ±Infinity as literals. */
export function dumpPythonJson(value: unknown, { sortKeys = true }: DumpOptions = {}): string {
  return toPythonJson(value, { sortKeys });
}
