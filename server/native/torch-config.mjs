// Finds the libtorch to build the binding against and prints gyp fragments for binding.gyp.
// Order: LIBTORCH_DIR (a libtorch or a PyTorch wheel's torch/ folder), else the system
// (Debian's libtorch-dev). Used by binding.gyp through `<!@(node torch-config.mjs KEY)` and
// imported by scripts/build-native.mjs.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const SYSTEM_PREFIXES = ['/usr', '/usr/local'];
const LIB_SUBDIRS = ['lib/x86_64-linux-gnu', 'lib/aarch64-linux-gnu', 'lib64', 'lib'];
const DEFAULT_INCLUDE_DIRS = new Set(['/usr/include', '/usr/local/include']);

/**
 * @typedef {object} TorchConfig
 * @property {string} source          'LIBTORCH_DIR' or 'system'
 * @property {string[]} includeDirs   extra include dirs (default system dirs left out)
 * @property {string} libDir          where libtorch.so lives
 * @property {boolean} rpath          whether the addon needs an rpath to libDir
 * @property {0|1} cxx11Abi           the _GLIBCXX_USE_CXX11_ABI libtorch was built with
 * @property {boolean} cuda           libtorch_cuda.so is present: link it so CUDA kernels register
 * @property {string|null} cudaInclude  CUDA runtime headers, needed only for memory queries
 */

/** @returns {TorchConfig | null} null when no libtorch is found (and LIBTORCH_DIR is unset). */
export function findTorch(env = process.env) {
  if (env.LIBTORCH_DIR) {
    const root = path.resolve(env.LIBTORCH_DIR);
    const include = path.join(root, 'include');
    const libDir = path.join(root, 'lib');
    if (!existsSync(path.join(include, 'ATen', 'ATen.h')) || !existsSync(path.join(libDir, 'libtorch.so'))) {
      throw new Error(
        `LIBTORCH_DIR=${env.LIBTORCH_DIR} is not a libtorch: expected include/ATen/ATen.h and lib/libtorch.so under it`,
      );
    }
    return complete(
      {
        source: 'LIBTORCH_DIR',
        includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
        libDir,
        rpath: true,
      },
      [path.join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake')],
      [path.join(root, '..', 'nvidia', 'cuda_runtime', 'include')],
      env,
    );
  }
  for (const prefix of SYSTEM_PREFIXES) {
    const include = path.join(prefix, 'include');
    if (!existsSync(path.join(include, 'torch', 'script.h')) && !existsSync(path.join(include, 'ATen', 'ATen.h'))) continue;
    const libDir = LIB_SUBDIRS.map((d) => path.join(prefix, d)).find((d) => existsSync(path.join(d, 'libtorch.so')));
    if (!libDir) continue;
    return complete(
      {
        source: 'system',
        includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
        libDir,
        rpath: !['/usr/lib', '/usr/lib64'].includes(libDir) && !libDir.startsWith('/usr/lib/'),
      },
      [path.join(libDir, 'cmake', 'Torch', 'TorchConfig.cmake'), path.join(prefix, 'share', 'cmake', 'Torch', 'TorchConfig.cmake')],
      [],
      env,
    );
  }
  return null;
}

function complete(base, cmakeFiles, extraCudaIncludes, env) {
  const cuda = existsSync(path.join(base.libDir, 'libtorch_cuda.so'));
  let cudaInclude = null;
  if (cuda) {
    const candidates = [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda']
      .filter(Boolean)
      .map((d) => path.join(d, 'include'))
      .concat(extraCudaIncludes);
    cudaInclude = candidates.find((d) => existsSync(path.join(d, 'cuda_runtime_api.h'))) ?? null;
  }
  return {
    ...base,
    includeDirs: base.includeDirs.filter((d) => existsSync(d) && !DEFAULT_INCLUDE_DIRS.has(d)),
    cxx11Abi: detectAbi(base.libDir, cmakeFiles, env),
    cuda,
    cudaInclude,
  };
}

// libtorch must be compiled against with the libstdc++ ABI it was built with, or std::string
// arguments (error messages, op names) cross the boundary mangled differently and fail to link.
function detectAbi(libDir, cmakeFiles, env) {
  if (env.LIBTORCH_CXX11_ABI === '0' || env.LIBTORCH_CXX11_ABI === '1') return Number(env.LIBTORCH_CXX11_ABI);
  for (const file of cmakeFiles) {
    if (!existsSync(file)) continue;
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(file, 'utf8'));
    if (m) return Number(m[1]);
  }
  const c10 = path.join(libDir, 'libc10.so');
  if (existsSync(c10)) return readFileSync(c10).includes('St7__cxx11') ? 1 : 0;
  return 1;
}

/** gyp fragments, one list per key, as binding.gyp asks for them. */
export function gypFragment(cfg, key) {
  switch (key) {
    case 'cflags':
      return [
        `-D_GLIBCXX_USE_CXX11_ABI=${cfg.cxx11Abi}`,
        ...cfg.includeDirs.map((d) => `-isystem${d}`),
        ...(cfg.cudaInclude ? [`-isystem${cfg.cudaInclude}`] : []),
      ];
    case 'defines':
      return [...(cfg.cuda ? ['NNUNET_TORCH_CUDA=1'] : []), ...(cfg.cudaInclude ? ['NNUNET_CUDA_HEADERS=1'] : [])];
    case 'ldflags':
      return [`-L${cfg.libDir}`, ...(cfg.rpath ? [`-Wl,-rpath,${cfg.libDir}`] : []), '-Wl,--no-as-needed'];
    case 'libraries':
      // libtorch_cuda registers the CUDA kernels from static initialisers: nothing references
      // its symbols, so --no-as-needed (above) keeps the linker from dropping it.
      return [...(cfg.cuda ? ['-ltorch_cuda', '-lc10_cuda'] : []), '-ltorch', '-ltorch_cpu', '-lc10'];
    default:
      throw new Error(`unknown key ${key}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const cfg = findTorch();
  const key = process.argv[2];
  if (!cfg) {
    process.stderr.write('libtorch not found: install libtorch-dev or set LIBTORCH_DIR\n');
    process.exit(1);
  }
  if (key === 'json') process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
  else process.stdout.write(gypFragment(cfg, key).join(' ') + '\n');
}
