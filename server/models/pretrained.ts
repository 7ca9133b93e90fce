// Installing a pretrained model: a catalog entry (server/models/catalog.ts) or a URL with its
// SHA-256 is downloaded (server/models/download.ts: resume, retries, size limit, hash checked)
// and then installed through installModelZip (server/models/install.ts: safe paths, every fold
// loaded once, folders renamed into place). A bundled entry (a model folder shipped with the
// package) is packed with our export and installed through the same path. The RPC handler is the
// one caller; the CLI reaches it through the server.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bundledFolder, findCatalogEntry, installRefusal, loadCatalog, CatalogError, type Catalog, type CatalogEntry } from './catalog.js';
import { downloadFile, DownloadError, parseDownloadUrl, type DownloadOptions } from './download.js';
import { exportModelZip } from './export.js';
import { installModelZip, type InstalledModel } from './install.js';
import { listModels, type ModelFolder } from './repository.js';

export interface PretrainedSource {
  catalogName?: string;
  url?: string;
  /** Caller's expected SHA-256: required for a URL and for entries that record none. */
  sha256?: string;
}

export interface InstallProgressEvent {
  stage: 'downloading' | 'installing';
  bytesDone: number;
  bytesTotal: number;
  message: string;
}

export interface InstallPretrainedOptions {
  resultsRoot: string;
  tmpDir: string;
  catalogFile: string;
  /** The server's NNUNET_MAX_UPLOAD_BYTES: the size limit when the catalog gives no size. */
  maxBytes: number;
  overwrite?: boolean;
  onProgress?: (event: InstallProgressEvent) => void;
  signal?: AbortSignal;
  /** Retry and timeout knobs of the download (tests shorten the backoff). */
  download?: Pick<DownloadOptions, 'retries' | 'backoffMs' | 'idleTimeoutMs' | 'maxRedirects'>;
}

export interface InstallPretrainedResult {
  installed: InstalledModel[];
  url: string;
  sha256: string;
  sizeBytes: number;
  resumes: number;
}

/** An install refused before any download: a bad name, a v1 entry, a missing hash. */
export class PretrainedRequestError extends CatalogError {
  constructor(message: string) {
    super(message);
    this.name = 'PretrainedRequestError';
  }
}

export interface PretrainedListing {
  entry: CatalogEntry;
  /** Model folders of the entry's dataset in the repository (runnable entries only). */
  installed: ModelFolder[];
}

/** Every catalog entry with the models of its dataset already installed. */
export function listPretrained(catalog: Catalog, resultsRoot: string): PretrainedListing[] {
  const models = listModels(resultsRoot);
  return catalog.entries.map((entry) => ({ entry, installed: entry.runnable ? models.filter((m) => m.dataset === entry.dataset) : [] }));
}

/** Resolves the source to URLs, the hash to check and the size limits; refuses before downloading. */
function resolveSource(source: PretrainedSource, o: InstallPretrainedOptions): { urls: string[]; sha256: string; maxBytes: number; expectedSize?: number; bundled?: { folder: string; dataset: string } } {
  const sha256 = source.sha256?.trim().toLowerCase() || undefined;
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new PretrainedRequestError('sha256 must be 64 hex characters');
  if (source.catalogName && source.url) throw new PretrainedRequestError('give a catalog name or a URL, not both');
  if (source.catalogName) {
    const catalog = loadCatalog(o.catalogFile);
    const entry = findCatalogEntry(catalog, source.catalogName);
    const refusal = installRefusal(entry, sha256);
    if (refusal) throw new PretrainedRequestError(refusal);
    if (entry.bundled) return { urls: [], sha256: '', maxBytes: o.maxBytes, bundled: { folder: bundledFolder(catalog, entry), dataset: entry.dataset } };
    return { urls: entry.urls, sha256: (entry.sha256 ?? sha256)!, maxBytes: entry.size_bytes ?? o.maxBytes, expectedSize: entry.size_bytes ?? undefined };
  }
  if (!source.url) throw new PretrainedRequestError('a catalog name or a URL is required');
  try {
    parseDownloadUrl(source.url);
  } catch (err) {
    throw new PretrainedRequestError((err as Error).message);
  }
  if (!sha256) throw new PretrainedRequestError(`installing from a URL needs the expected SHA-256 of the zip (--sha256); it is checked before anything is installed`);
  return { urls: [source.url], sha256, maxBytes: o.maxBytes };
}

export async function installPretrained(source: PretrainedSource, o: InstallPretrainedOptions): Promise<InstallPretrainedResult> {
  const { urls, sha256, maxBytes, expectedSize, bundled } = resolveSource(source, o);
  if (bundled) return installBundled(bundled, o);
  let lastError: Error | undefined;
  for (const url of urls) {
    let downloaded;
    try {
      downloaded = await downloadFile(url, {
        ...o.download,
        tmpDir: o.tmpDir,
        sha256,
        maxBytes,
        expectedSize,
        signal: o.signal,
        onProgress: (bytesDone, total) => o.onProgress?.({ stage: 'downloading', bytesDone, bytesTotal: total ?? 0, message: '' }),
        onEvent: (message) => o.onProgress?.({ stage: 'downloading', bytesDone: 0, bytesTotal: 0, message }),
      });
    } catch (err) {
      // another mirror may work, unless the bytes themselves were wrong or the request was refused
      if (err instanceof DownloadError && (err.kind === 'network' || err.kind === 'http' || err.kind === 'truncated') && !o.signal?.aborted) {
        lastError = err;
        o.onProgress?.({ stage: 'downloading', bytesDone: 0, bytesTotal: 0, message: `${url}: ${err.message}` });
        continue;
      }
      throw err;
    }
    try {
      o.onProgress?.({ stage: 'installing', bytesDone: downloaded.sizeBytes, bytesTotal: downloaded.sizeBytes, message: `SHA-256 ${downloaded.sha256} verified; installing` });
      const installed = await installModelZip(downloaded.file, o.resultsRoot, {
        overwrite: o.overwrite,
        onProgress: (message) => o.onProgress?.({ stage: 'installing', bytesDone: downloaded.sizeBytes, bytesTotal: downloaded.sizeBytes, message }),
      });
      return { installed, url, sha256: downloaded.sha256, sizeBytes: downloaded.sizeBytes, resumes: downloaded.resumes };
    } finally {
      downloaded.cleanup();
    }
  }
  throw lastError ?? new DownloadError('no URL to download from', 'url');
}

/**
 * A bundled entry: its folder is zipped with our export and installed like a download, so it
 * passes the same checks (every fold loaded once, folders renamed into place).
 */
async function installBundled(bundled: { folder: string; dataset: string }, o: InstallPretrainedOptions): Promise<InstallPretrainedResult> {
  await mkdir(o.tmpDir, { recursive: true });
  const dir = await mkdtemp(join(o.tmpDir, 'nnunet-bundled-'));
  try {
    const zip = join(dir, 'model.zip');
    o.onProgress?.({ stage: 'installing', bytesDone: 0, bytesTotal: 0, message: `packing the bundled model from ${bundled.folder}` });
    await exportModelZip(bundled.folder, zip, { dataset: bundled.dataset, allModels: true });
    const installed = await installModelZip(zip, o.resultsRoot, {
      overwrite: o.overwrite,
      onProgress: (message) => o.onProgress?.({ stage: 'installing', bytesDone: 0, bytesTotal: 0, message }),
    });
    return { installed, url: `bundled:${bundled.folder}`, sha256: createHash('sha256').update(await readFile(zip)).digest('hex'), sizeBytes: (await stat(zip)).size, resumes: 0 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
