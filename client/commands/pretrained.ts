// `nnunet print_available_pretrained_models`, `nnunet download_pretrained_model NAME` and
// `nnunet download_pretrained_model_by_url URL --sha256 H`: the server's pretrained catalog
// (models/catalog.json or NNUNET_CATALOG) and installs from it or from a URL. The server downloads
// (resuming after interruptions), checks the SHA-256, then installs atomically; progress is shown
// here on stderr. nnU-Net v1 entries are listed but cannot be installed (v1 zips do not run here).
import type { InstallProgress, PretrainedModel } from '../sdk/index.js';
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import { byteProgress } from '../progress.js';
import type { ParsedArgs } from '../args.js';
import { EXIT, type Command, type CommandIO } from './types.js';

function describe(m: PretrainedModel): string {
  const state = !m.runnable
    ? 'nnU-Net v1 model: listed only, cannot be installed or run here'
    : m.installed.length > 0
      ? `installed: ${m.installed.map((i) => `${i.trainer}__${i.plans}__${i.configuration}`).join(', ')}`
      : `not installed${m.sha256 ? '' : ' (no SHA-256 in the catalog: pass --sha256 to install)'}`;
  return [
    m.name,
    `  ${m.description}`,
    `  dataset ${m.dataset}; input channels: ${m.channels.map((c, i) => `${i}: ${c.name} (${c.meaning})`).join(', ')}`,
    ...(m.labels.length > 0 ? [`  labels: ${m.labels.map((l) => `${l.name}=${l.values.join('+')}`).join(', ')}`] : []),
    `  licence: ${m.licence}`,
    `  ${state}`,
  ].join('\n');
}

export const printAvailablePretrainedModelsCommand: Command = {
  spec: {
    name: 'print_available_pretrained_models',
    summary: 'list the pretrained catalog: channels, labels, licence, whether runnable and installed',
    options: [{ flags: ['--json'], dest: 'json', type: 'flag', help: 'print JSON' }, ...SERVER_OPTIONS],
  },
  async run(args, io) {
    return withConnection(args, io, async ({ client }) => {
      const models = await client.listPretrainedModels();
      if (args.json) io.stdout(JSON.stringify(models, null, 2));
      else io.stdout(models.length === 0 ? 'the pretrained catalog is empty' : models.map(describe).join('\n\n'));
      return EXIT.ok;
    });
  },
};

/** Runs one install on the server, with a byte bar while downloading and the install steps as lines. */
async function install(args: ParsedArgs, io: CommandIO, request: { catalog_name?: string; url?: string }): Promise<number> {
  return withConnection(args, io, async ({ client }, signal) => {
    const bar = byteProgress(io, 'downloading');
    const onProgress = (p: InstallProgress) => {
      if (p.stage === 'downloading' && !p.message && p.bytes_total > 0) bar.update(p.bytes_done, p.bytes_total);
      if (p.message) io.stderr(`${p.stage}: ${p.message}`);
    };
    let result;
    try {
      result = await client.installPretrainedModel({ ...request, sha256: args.sha256 === undefined ? '' : String(args.sha256).toLowerCase(), overwrite: Boolean(args.overwrite) }, onProgress, { signal });
    } finally {
      bar.stop();
    }
    for (const m of result.models) io.stdout(`installed ${m.dataset}/${m.trainer}__${m.plans}__${m.configuration} (folds ${m.folds.join(', ')}), SHA-256 ${result.sha256}`);
    return EXIT.ok;
  });
}

const INSTALL_OPTIONS = [
  { flags: ['--sha256'], dest: 'sha256', help: 'expected SHA-256 of the zip (required for a URL, and for catalog entries that record none)', metavar: 'HEX' },
  { flags: ['--overwrite'], dest: 'overwrite', type: 'flag' as const, help: 'replace model folders that already exist' },
  ...SERVER_OPTIONS,
];

export const downloadPretrainedModelCommand: Command = {
  spec: {
    name: 'download_pretrained_model',
    summary: 'download a model of the pretrained catalog (SHA-256 verified) and install it',
    positionals: [{ dest: 'name', help: 'catalog name (see print_available_pretrained_models)' }],
    options: INSTALL_OPTIONS,
  },
  run: (args, io) => install(args, io, { catalog_name: String(args.name) }),
};

export const downloadPretrainedModelByUrlCommand: Command = {
  spec: {
    name: 'download_pretrained_model_by_url',
    summary: 'download a model zip from an http(s) URL (SHA-256 verified) and install it',
    positionals: [{ dest: 'url', help: 'http(s) URL of a model zip (nnUNetv2_export_model_to_zip format or ours)' }],
    options: INSTALL_OPTIONS,
  },
  run: (args, io) => install(args, io, { url: String(args.url) }),
};
