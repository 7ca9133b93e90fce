// The pretrained catalog (models/catalog.json, or the file NNUNET_CATALOG names): models a user can
// install by name, with what an operator needs to judge them (input channels and their meaning,
// labels, licence, citation) and to verify them (SHA-256, size). nnU-Net v2 has no such list
// (REFERENCE §9.1); v1 had one in code (§9.2). Its v1 entries are listed here for reference with
// format "nnunetv1_zip": v1 model zips cannot be run by this server (nor by nnU-Net v2).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { projectRoot } from '../config.js';

export const CATALOG_FORMATS = ['nnunetv2_zip', 'nnunetv1_zip'] as const;
export type CatalogFormat = (typeof CATALOG_FORMATS)[number];

export interface CatalogChannel {
  name: string;
  meaning: string;
}

export interface CatalogEntry {
  name: string;
  description: string;
  /** Dataset folder the zip holds: DatasetXXX_Name (v2) or TaskXXX_Name (v1). */
  dataset: string;
  channels: CatalogChannel[];
  /** dataset.json-style labels (name → value or region); null when the catalog does not record them (v1 entries only). */
  labels: Record<string, number | number[]> | null;
  licence: string;
  citation: string;
  urls: string[];
  /** Lowercase hex SHA-256 of the zip; null when not known (installing then needs the caller's hash). */
  sha256: string | null;
  size_bytes: number | null;
  format: CatalogFormat;
  /** True only for nnunetv2_zip: whether this server can install and run the model. */
  runnable: boolean;
  /**
   * A model shipped with the package instead of downloaded: a folder in nnUNet_results layout,
   * relative to the catalog file (e.g. "demo" for models/demo). Needs no URL or hash: it comes
   * with the code, and installs through the same checks as a downloaded zip.
   */
  bundled: string | null;
}

export interface Catalog {
  version: number;
  entries: CatalogEntry[];
  /** The file it was read from. */
  file: string;
}

export class CatalogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogError';
  }
}

/** The catalog file: NNUNET_CATALOG when set, else the package's models/catalog.json. */
export function catalogPath(configured?: string): string {
  return configured || join(projectRoot(), 'models', 'catalog.json');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseEntry(raw: unknown, index: number, fail: (where: string, why: string) => never): CatalogEntry {
  const at = (field: string) => `entries[${index}]${isObject(raw) && typeof raw.name === 'string' ? ` ("${raw.name}")` : ''}.${field}`;
  if (!isObject(raw)) fail(`entries[${index}]`, 'must be an object');
  const str = (field: string, optional = false): string => {
    const v = raw[field];
    if (typeof v === 'string' && (optional || v.trim() !== '')) return v;
    if (optional && v === undefined) return '';
    return fail(at(field), 'must be a non-empty string');
  };
  const name = str('name');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) fail(at('name'), 'may hold only letters, digits, "_", "." and "-"');
  const format = raw.format;
  if (typeof format !== 'string' || !(CATALOG_FORMATS as readonly string[]).includes(format)) fail(at('format'), `must be one of ${CATALOG_FORMATS.join(', ')}`);
  const runnable = format === 'nnunetv2_zip';
  if (raw.runnable !== undefined && raw.runnable !== runnable) {
    fail(at('runnable'), `must be ${runnable} for format ${String(format)} (only nnunetv2_zip models can be run by this server)`);
  }
  const dataset = str('dataset');
  const pattern = format === 'nnunetv2_zip' ? /^Dataset\d{3}_\S+$/ : /^Task\d{3}_\S+$/;
  if (!pattern.test(dataset)) fail(at('dataset'), `must be a ${format === 'nnunetv2_zip' ? 'DatasetXXX_Name' : 'TaskXXX_Name'} folder name, got "${dataset}"`);

  if (!Array.isArray(raw.channels) || raw.channels.length === 0) fail(at('channels'), 'must be a non-empty list of {name, meaning}');
  const channels = raw.channels.map((c, i) => {
    if (!isObject(c) || typeof c.name !== 'string' || c.name === '' || typeof c.meaning !== 'string') fail(at(`channels[${i}]`), 'must be {"name": string, "meaning": string}');
    return { name: c.name, meaning: c.meaning };
  });

  let labels: CatalogEntry['labels'] = null;
  if (raw.labels === null || raw.labels === undefined) {
    if (runnable) fail(at('labels'), 'is required for an nnunetv2_zip entry (name → label value, background included)');
  } else {
    if (!isObject(raw.labels) || Object.keys(raw.labels).length === 0) fail(at('labels'), 'must be an object name → label value (or list of values for a region)');
    labels = {};
    for (const [label, v] of Object.entries(raw.labels)) {
      const ok = (x: unknown) => Number.isInteger(x) && (x as number) >= 0;
      if (!(ok(v) || (Array.isArray(v) && v.length > 0 && v.every(ok)))) fail(at(`labels.${label}`), 'must be a non-negative integer or a list of them');
      labels[label] = v as number | number[];
    }
  }

  if (!Array.isArray(raw.urls)) fail(at('urls'), 'must be a list of http(s) URLs');
  const urls = raw.urls.map((u, i) => {
    if (typeof u !== 'string') return fail(at(`urls[${i}]`), 'must be a string');
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      return fail(at(`urls[${i}]`), `is not a valid URL: "${u}"`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') fail(at(`urls[${i}]`), `must be http or https, got ${parsed.protocol}`);
    return u;
  });
  let bundled: string | null = null;
  if (raw.bundled !== undefined && raw.bundled !== null) {
    if (typeof raw.bundled !== 'string' || raw.bundled === '' || raw.bundled.startsWith('/') || raw.bundled.includes('\\') || raw.bundled.split('/').includes('..')) {
      fail(at('bundled'), 'must be a folder path relative to the catalog file, without ".."');
    }
    if (!runnable) fail(at('bundled'), 'only nnunetv2_zip entries can be bundled');
    bundled = raw.bundled as string;
  }
  if (runnable && urls.length === 0 && !bundled) fail(at('urls'), 'an nnunetv2_zip entry needs at least one URL to install from (or a bundled folder)');

  const sha256 = raw.sha256 ?? null;
  if (sha256 !== null && (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256))) fail(at('sha256'), 'must be 64 lowercase hex characters, or null when not known');
  const size = raw.size_bytes ?? null;
  if (size !== null && (!Number.isSafeInteger(size) || (size as number) <= 0)) fail(at('size_bytes'), 'must be a positive integer, or null when not known');

  return {
    name,
    description: str('description'),
    dataset,
    channels,
    labels,
    licence: str('licence'),
    citation: str('citation'),
    urls,
    sha256: sha256 as string | null,
    size_bytes: size as number | null,
    format: format as CatalogFormat,
    runnable,
    bundled,
  };
}

/** Parses and validates a catalog; every error names the file, the entry and the field. */
export function parseCatalog(raw: unknown, file: string): Catalog {
  const fail = (where: string, why: string): never => {
    throw new CatalogError(`pretrained catalog ${file}: ${where}: ${why}`);
  };
  if (!isObject(raw)) fail('(top level)', 'must be an object {"version": 1, "entries": [...]}');
  const r = raw as Record<string, unknown>;
  if (r.version !== 1) fail('version', `must be 1 (the only catalog version this server reads), got ${JSON.stringify(r.version)}`);
  if (!Array.isArray(r.entries)) fail('entries', 'must be a list');
  const entries = (r.entries as unknown[]).map((e, i) => parseEntry(e, i, fail));
  const seen = new Set<string>();
  for (const [i, e] of entries.entries()) {
    if (seen.has(e.name)) fail(`entries[${i}] ("${e.name}").name`, 'is used by an earlier entry; names must be unique');
    seen.add(e.name);
  }
  return { version: 1, entries, file };
}

export function loadCatalog(file: string): Catalog {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CatalogError(`pretrained catalog ${file} cannot be read: ${(err as Error).message} (set NNUNET_CATALOG to another file)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CatalogError(`pretrained catalog ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseCatalog(raw, file);
}

/** The entry called `name`; the error lists the names there are. */
export function findCatalogEntry(catalog: Catalog, name: string): CatalogEntry {
  const entry = catalog.entries.find((e) => e.name === name);
  if (!entry) throw new CatalogError(`no model "${name}" in the pretrained catalog ${catalog.file} (available: ${catalog.entries.map((e) => e.name).join(', ') || 'none'})`);
  return entry;
}

/** Why an entry cannot be installed as asked, or undefined; `sha256` is the caller's hash. */
export function installRefusal(entry: CatalogEntry, sha256: string | undefined): string | undefined {
  if (!entry.runnable) {
    return `"${entry.name}" is an nnU-Net v1 model zip (format ${entry.format}): it is listed for reference, but v1 models cannot be installed or run by this server (nor loaded by nnU-Net v2)`;
  }
  if (entry.bundled) return undefined;
  if (!entry.sha256 && !sha256) return `the catalog records no SHA-256 for "${entry.name}": pass the expected hash (--sha256) to install it`;
  if (entry.sha256 && sha256 && entry.sha256 !== sha256) return `the SHA-256 given (${sha256}) differs from the catalog's for "${entry.name}" (${entry.sha256})`;
  return undefined;
}

/** The folder a bundled entry's models are in (results layout). */
export function bundledFolder(catalog: Catalog, entry: CatalogEntry): string {
  if (!entry.bundled) throw new CatalogError(`"${entry.name}" is not a bundled model`);
  return resolve(dirname(catalog.file), entry.bundled);
}
