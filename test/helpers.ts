// Shared test helpers: temporary folders and the read-only real data in ../shared.
import { spawnSync } from 'node:child_process';
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

/** Debian's Python (the first python3 on PATH may be another one without Debian's packages). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** True when Debian's Python can import every module named. */
export function pythonHas(...modules: string[]): boolean {
  const r = spawnSync(DEBIAN_PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore' });
  return r.status === 0;
}

/** Runs a Python script with Debian's Python; returns stdout as a Buffer, throws with stderr on failure. */
export function runPython(script: string, args: string[] = [], input?: Uint8Array): Buffer {
  const r = spawnSync(DEBIAN_PYTHON, ['-c', script, ...args], { maxBuffer: 1 << 30, input });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr.toString()}`);
  return r.stdout;
}
