// Shared test helpers: temporary folders and the read-only real data in ../shared.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED = process.env.NNUNET_SHARED_DIR ?? resolve(REPO_ROOT, '..', 'shared');
export const HIPPOCAMPUS = join(SHARED, 'data', 'Dataset004_Hippocampus');

/** A fresh temporary folder, removed by the returned cleanup function. */
export function tempDir(prefix = 'nnunet-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Copies the real Hippocampus dataset into `rawRoot` (the shared copy is read-only). */
export function copyHippocampus(rawRoot: string, folderName = 'Dataset004_Hippocampus'): string {
  const target = join(rawRoot, folderName);
  cpSync(HIPPOCAMPUS, target, { recursive: true });
  return target;
}
