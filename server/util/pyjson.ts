// JSON as Python's json module writes it for nnU-Net's files: `sort_keys=True`, 4-space indent, and
// the non-standard `NaN`/`Infinity` literals (nnU-Net writes NaN Dice for absent structures).
// JSON.stringify would turn NaN into null and lose that meaning, so we write and read the literals.

const NAN_SENTINEL = '\u0000NaN\u0000';
const INF_SENTINEL = '\u0000Infinity\u0000';
const NINF_SENTINEL = '\u0000-Infinity\u0000';

function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeysDeep((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export interface DumpOptions {
  sortKeys?: boolean;
  indent?: number;
}

/** Serialises like Python's `json.dumps(obj, sort_keys=True, indent=4)`, NaN and ±Infinity as literals. */
export function dumpPythonJson(value: unknown, { sortKeys = true, indent = 4 }: DumpOptions = {}): string {
  const prepared = sortKeys ? sortKeysDeep(value) : value;
  const text = JSON.stringify(
    prepared,
    (_key, v) => {
      if (typeof v !== 'number' || Number.isFinite(v)) return v;
      return Number.isNaN(v) ? NAN_SENTINEL : v > 0 ? INF_SENTINEL : NINF_SENTINEL;
    },
    indent,
  );
  return text
    .replaceAll(`"${NAN_SENTINEL}"`.replaceAll('\u0000', '\\u0000'), 'NaN')
    .replaceAll(`"${INF_SENTINEL}"`.replaceAll('\u0000', '\\u0000'), 'Infinity')
    .replaceAll(`"${NINF_SENTINEL}"`.replaceAll('\u0000', '\\u0000'), '-Infinity');
}

/** Parses JSON that may contain Python's NaN / Infinity / -Infinity literals (outside strings). */
export function parsePythonJson(text: string): unknown {
  // Replace the bare literals outside string tokens with sentinels, then map them back.
  const replaced = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (token) => {
    if (token.startsWith('"')) return token;
    return JSON.stringify(token === 'NaN' ? NAN_SENTINEL : token === 'Infinity' ? INF_SENTINEL : NINF_SENTINEL);
  });
  return JSON.parse(replaced, (_key, v) => (v === NAN_SENTINEL ? NaN : v === INF_SENTINEL ? Infinity : v === NINF_SENTINEL ? -Infinity : v));
}
