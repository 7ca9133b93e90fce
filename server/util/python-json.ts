// JSON text as Python's json.dump(obj, indent=4) writes it (batchgenerators' save_json), so the
// plans and fingerprint files we write are the files nnU-Net writes: same indentation, key order,
// ASCII escaping and float spelling (`1.0`, `1e-05`). JavaScript numbers do not know whether they
// were a Python int or float, so the caller names the paths whose numbers are floats.

/** A path into the document: object keys and array indices from the root. */
export type JsonPath = readonly (string | number)[];

export interface PythonJsonOptions {
  /** Sort object keys (json.dump's sort_keys); nnU-Net sorts fingerprints, not plans. */
  sortKeys?: boolean;
  /** True where a number is a Python float (written with a decimal point or exponent). */
  isFloat?: (path: JsonPath) => boolean;
}

/** Python's repr() of a float: shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() without an argument gives the same shortest digits as Python's repr.
  const [mantissa, expText] = x.toExponential().split('e');
  const exponent = Number(expText);
  if (exponent < -4 || exponent >= 16) {
    const sign = exponent < 0 ? '-' : '+';
    return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  const fixed = String(x);
  return Number.isInteger(x) ? `${fixed}.0` : fixed;
}

/** A Python int: integral numbers only; a non-integral value falls back to float spelling. */
function pythonNumber(x: number, float: boolean): string {
  if (!float && Number.isInteger(x) && Math.abs(x) < 2 ** 63) return BigInt(x).toString();
  return pythonFloatRepr(x);
}

/** json.dumps' ensure_ascii escaping: everything outside printable ASCII as \uXXXX. */
function pythonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

const INT_KEY = /^(0|-?[1-9]\d*)$/;

/** sort_keys order: nnU-Net's int keys (channel indices) sort numerically, strings by code point. */
function pythonKeyOrder(a: string, b: string): number {
  if (INT_KEY.test(a) && INT_KEY.test(b)) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Serialises `value` like Python's json.dumps(value, indent=4[, sort_keys=True]). */
export function toPythonJson(value: unknown, options: PythonJsonOptions = {}): string {
  const isFloat = options.isFloat ?? (() => false);
  const write = (v: unknown, path: (string | number)[], indent: string): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') return pythonNumber(v, isFloat(path));
    if (typeof v === 'string') return pythonString(v);
    const inner = indent + '    ';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      const items = v.map((item, i) => inner + write(item, [...path, i], inner));
      return `[\n${items.join(',\n')}\n${indent}]`;
    }
    if (typeof v === 'object') {
      let keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
      if (keys.length === 0) return '{}';
      if (options.sortKeys) keys = keys.sort(pythonKeyOrder);
      const items = keys.map((k) => `${inner}${pythonString(k)}: ${write((v as Record<string, unknown>)[k], [...path, k], inner)}`);
      return `{\n${items.join(',\n')}\n${indent}}`;
    }
    throw new TypeError(`cannot write a ${typeof v} as JSON`);
  };
  return write(value, [], '');
}

/** Parses JSON that Python may have written with NaN / Infinity literals (json.dump allows them). */
export function parsePythonJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    if (!/\b(NaN|-?Infinity)\b/.test(text)) throw err;
  }
  // Replace bare literals outside strings with sentinels, then map them back to numbers.
  const sentinel = '__nnunet_nonfinite__';
  const replaced = text.replace(/"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g, (whole, literal: string | undefined) =>
    literal ? `"${sentinel}${literal}"` : whole,
  );
  return JSON.parse(replaced, (_key, v: unknown) => {
    if (typeof v !== 'string' || !v.startsWith(sentinel)) return v;
    const literal = v.slice(sentinel.length);
    return literal === 'NaN' ? NaN : literal === 'Infinity' ? Infinity : -Infinity;
  });
}
