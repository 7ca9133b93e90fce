// Builds the libtorch binding (server/native) when a libtorch is present; without one it says
// so in one line and exits 0, so `npm ci` works on inference-only machines. A failing build
// where libtorch exists exits non-zero with the compiler's output.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import console from 'node:console';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { findTorch } from '../server/native/torch-config.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'server', 'native');

let torch;
try {
  torch = findTorch();
} catch (err) {
  console.error(`build-native: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
if (!torch) {
  console.log('libtorch not found: training disabled; install libtorch-dev or set LIBTORCH_DIR');
  process.exit(0);
}

// Our devDependency first; under `npm ci --omit=dev` the node-gyp bundled with npm, which npm
// names in npm_config_node_gyp while it runs install scripts.
const localGyp = path.join(root, 'node_modules', '.bin', 'node-gyp');
const npmGyp = process.env.npm_config_node_gyp;
const gypCommand = existsSync(localGyp) ? [localGyp] : npmGyp && existsSync(npmGyp) ? [process.execPath, npmGyp] : null;
if (!gypCommand) {
  console.error('build-native: node-gyp not found (node_modules/.bin/node-gyp is missing: run npm ci first)');
  process.exit(1);
}

const args = ['rebuild'];
// Distribution-packaged Node (Debian's) ships its headers under <prefix>/include/node; use them
// instead of downloading, which fails on offline build machines.
const localHeaders = localNodeDir();
if (localHeaders) args.push(`--nodedir=${localHeaders}`);
if (process.env.JOBS) args.push(`--jobs=${process.env.JOBS}`);
else args.push('--jobs=max');

const cuda = torch.cuda ? (torch.cudaInclude ? ', CUDA' : ', CUDA (no memory queries: CUDA headers not found)') : '';
console.log(`build-native: building against ${torch.source} libtorch in ${torch.libDir} (cxx11 abi ${torch.cxx11Abi}${cuda})`);
const started = Date.now();
const res = spawnSync(gypCommand[0], [...gypCommand.slice(1), ...args], { cwd: nativeDir, stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
if (res.error) {
  console.error(`build-native: could not run node-gyp: ${res.error.message}`);
  process.exit(1);
}
if (res.status !== 0) {
  console.error(`build-native: node-gyp failed (exit ${res.status}); the compiler's messages are above`);
  process.exit(res.status ?? 1);
}
console.log(`build-native: built server/native/build/Release/nnunet_torch.node in ${((Date.now() - started) / 1000).toFixed(0)} s`);

function localNodeDir() {
  const prefix = path.dirname(path.dirname(process.execPath));
  const versionH = path.join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(versionH) || !existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) return null;
  const text = readFileSync(versionH, 'utf8');
  const part = (name) => new RegExp(`#define\\s+NODE_${name}_VERSION\\s+(\\d+)`).exec(text)?.[1];
  const version = `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  return version === process.version ? prefix : null;
}
