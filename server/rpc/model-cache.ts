// Loaded models (onnxruntime sessions per fold) kept between Predict calls, least recently used
// evicted first, at most NNUNET_MAX_LOADED_MODELS. A model in use is never released under a
// running prediction: eviction waits until its last user is done. Concurrent first uses of one
// model share a single load.
//
// A cached model is checked against the folder on disk at each use (a stamp of the model folder's
// and its fold folders' inode and mtime): when another replica reinstalled the model over the
// shared volume, or a fold was retrained in place, the stamp changes and the model is loaded again.
// Installs and deletes through this server also invalidate it directly.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelFolder, releaseModel, type LoadedModel } from '../inference/model-folder.js';

/** Identity of a model folder's contents: changes when the folder or one of its folds is replaced or rewritten. */
export function folderStamp(folder: string): string {
  const stamp = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    return st ? `${st.ino}:${st.mtimeMs}` : '-';
  };
  let folds: string[] = [];
  try {
    folds = readdirSync(folder).filter((n) => n.startsWith('fold_')).sort();
  } catch {
    // a missing folder has the stamp '-'; the load reports it
  }
  return [stamp(folder), ...folds.map((f) => `${f}=${stamp(join(folder, f))}`)].join('|');
}

interface Entry {
  key: string;
  folder: string;
  stamp: string;
  loading: Promise<LoadedModel>;
  users: number;
  lastUsed: number;
  /** Removed from the cache (evicted or invalidated); released when its last user is done. */
  dropped: boolean;
  /** The load finished (successfully: failed loads leave the cache). */
  settled?: boolean;
}

export interface ModelLease {
  model: LoadedModel;
  /** True when this call had to load the model (for progress reporting). */
  loaded: boolean;
  release(): void;
}

export class ModelCache {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;

  constructor(
    private readonly maxModels: number,
    private readonly onSizeChange: (size: number) => void = () => {},
    private readonly load: (folder: string, folds: string[] | undefined) => Promise<LoadedModel> = (folder, folds) => loadModelFolder(folder, { folds }),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  has(folder: string, folds: string[] | undefined): boolean {
    return this.entries.has(ModelCache.key(folder, folds));
  }

  static key(folder: string, folds: string[] | undefined): string {
    return `${folder}\u0000${folds ? [...folds].sort().join(',') : '*'}`;
  }

  async acquire(folder: string, folds: string[] | undefined): Promise<ModelLease> {
    const key = ModelCache.key(folder, folds);
    const stamp = folderStamp(folder);
    let entry = this.entries.get(key);
    // Compared once loaded: the first load may itself write fold_X/model.onnx (a converted checkpoint).
    if (entry?.settled && entry.stamp !== stamp) {
      this.drop(entry);
      entry = undefined;
    }
    const loaded = !entry;
    if (!entry) {
      entry = { key, folder, stamp, loading: this.load(folder, folds), users: 0, lastUsed: 0, dropped: false };
      this.entries.set(key, entry);
      this.onSizeChange(this.entries.size);
      const failed = entry;
      entry.loading.then(
        () => {
          failed.settled = true;
          failed.stamp = folderStamp(folder);
        },
        () => {},
      );
      // A failed load is not cached: the next call tries again (the folder may have been fixed).
      entry.loading.catch(() => {
        if (this.entries.get(key) === failed) {
          this.entries.delete(key);
          this.onSizeChange(this.entries.size);
        }
      });
    }
    entry.users++;
    entry.lastUsed = ++this.clock;
    let model: LoadedModel;
    try {
      model = await entry.loading;
    } catch (err) {
      entry.users--;
      throw err;
    }
    this.evict();
    const held = entry;
    let released = false;
    return {
      model,
      loaded,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.dropped && held.users === 0) this.dispose(held);
        else this.evict();
      },
    };
  }

  /** 'loading' while sessions of `folder` are being created, 'loaded' while some are held, else undefined (for ModelService's states). */
  folderState(folder: string): 'loading' | 'loaded' | undefined {
    const entries = [...this.entries.values()].filter((e) => e.folder === folder);
    if (entries.some((e) => !e.settled)) return 'loading';
    return entries.length > 0 ? 'loaded' : undefined;
  }

  /** Drops every cached model of a folder (after DeleteModel or a reinstall). */
  invalidate(folder: string): void {
    for (const entry of [...this.entries.values()]) if (entry.folder === folder) this.drop(entry);
  }

  async close(): Promise<void> {
    for (const entry of [...this.entries.values()]) this.drop(entry);
  }

  private evict(): void {
    const idle = [...this.entries.values()].filter((e) => e.users === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.entries.size > this.maxModels && idle.length > 0) this.drop(idle.shift()!);
  }

  private drop(entry: Entry): void {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    entry.dropped = true;
    this.onSizeChange(this.entries.size);
    if (entry.users === 0) this.dispose(entry);
  }

  private dispose(entry: Entry): void {
    entry.loading.then(releaseModel, () => {}).catch(() => {});
  }
}
