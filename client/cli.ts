#!/usr/bin/env node
// `nnunet <command>`: nnU-Net v2's commands under one program, with the same flags
// (`nnUNetv2_plan_and_preprocess -d 4` becomes `nnunet plan_and_preprocess -d 4`).
// The command layer only parses and prints.
//
// The CLI is a client of the gRPC server: the commands that act on datasets and models the
// server holds (verify_dataset_integrity, plan_and_preprocess, train, predict,
// find_best_configuration, install_pretrained_model_from_zip, list_models) talk to the server
// given by `--server host:port` or NNUNET_SERVER (token: `--token` / NNUNET_TOKEN) through the
// SDK, and without one start an embedded server in this process on a loopback port and stop it
// when done (client/connection.ts): one code path either way. With a named server, dataset ids
// name the server's datasets and results, while input files (predict -i, a model zip) are
// streamed from this machine and outputs written here.
//
// The commands that analyse or transform folders the user points at (extract_fingerprint,
// plan_experiment, preprocess, evaluate_folder, evaluate_simple, ensemble,
// determine_postprocessing, apply_postprocessing, predict_from_modelfolder) stay local: they read
// and write the user's own folders and there is nothing for a server to hold, so they run the
// stage modules in this process.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { helpText, parseArgs, usage, UsageError } from './args.js';
import { ConnectionError, InterruptedError } from './connection.js';
import { COMMANDS, PLANNED } from './commands/index.js';
import { JobFailedError } from './commands/jobs.js';
import { EXIT, type CommandIO } from './commands/types.js';
import { DatasetError } from '../server/dataset/errors.js';
import { ImageFormatError } from '../server/io/errors.js';

/** Commands that run in this process on local folders, without a server. */
const LOCAL_COMMANDS = new Set([
  'extract_fingerprint',
  'plan_experiment',
  'preprocess',
  'predict_from_modelfolder',
  'evaluate_folder',
  'evaluate_simple',
  'determine_postprocessing',
  'apply_postprocessing',
  'ensemble',
  'serve',
]);

/** A gRPC status from the server (the SDK passes them through). */
function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as grpc.ServiceError).code === 'number' && 'details' in err;
}

function mainHelp(): string {
  const width = Math.max(...[...COMMANDS.map((c) => c.spec.name), ...PLANNED.map((p) => p.name)].map((n) => n.length)) + 2;
  return [
    'usage: nnunet <command> [options]   (nnunet <command> -h for its options)',
    '',
    'nnU-Net v2 as a server and a command-line tool.',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)} ${c.spec.summary}${LOCAL_COMMANDS.has(c.spec.name) ? '' : ' [server]'}`),
    ...(PLANNED.length > 0 ? ['', 'nnU-Net commands not available in this version yet:', ...PLANNED.map((p) => `  ${p.name.padEnd(width)} ${p.summary}`)] : []),
    '',
    'Data roots: nnUNet_raw, nnUNet_preprocessed, nnUNet_results, else folders under NNUNET_HOME (default ./nnunet_data).',
    '',
    'Commands marked [server] talk to the server given by --server HOST:PORT or NNUNET_SERVER (token: --token or',
    'NNUNET_TOKEN; TLS: NNUNET_CLIENT_TLS=1, NNUNET_CLIENT_TLS_CA, NNUNET_CLIENT_TLS_CERT/_KEY); without one they start',
    'an embedded server in this process on the data roots above and stop it when done. The other commands read and',
    'write folders you point them at and run in this process.',
  ].join('\n');
}

export async function runCli(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    io.stdout(mainHelp());
    return name ? EXIT.ok : EXIT.usage;
  }
  const normalized = name.replace(/^nnUNetv2_/, '');
  const command = COMMANDS.find((c) => c.spec.name === normalized);
  if (!command) {
    const planned = PLANNED.find((p) => p.name === normalized);
    if (planned) {
      io.stderr(`nnunet ${planned.name}: not implemented yet (UNIMPLEMENTED): ${planned.missing}.`);
      return EXIT.unimplemented;
    }
    io.stderr(`nnunet: unknown command "${name}"\n\n${mainHelp()}`);
    return EXIT.usage;
  }
  try {
    const args = parseArgs(command.spec, rest);
    if (!args) {
      io.stdout(helpText(command.spec));
      return EXIT.ok;
    }
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${usage(command.spec)}\nnunet ${command.spec.name}: error: ${err.message}`);
      return EXIT.usage;
    }
    if (err instanceof DatasetError || err instanceof ImageFormatError || err instanceof ConnectionError || err instanceof JobFailedError) {
      io.stderr(`nnunet ${command.spec.name}: error: ${err.message}`);
      return EXIT.failed;
    }
    if (err instanceof InterruptedError) {
      io.stderr(`nnunet ${command.spec.name}: interrupted`);
      return 130;
    }
    if (isServiceError(err)) {
      // The server's words, with the status name and the field at fault when it sent one.
      const field = err.metadata?.get('nnunet-error-field')[0];
      const code = grpc.status[err.code] ?? String(err.code);
      io.stderr(`nnunet ${command.spec.name}: error: ${err.details || err.message} (${code}${field ? `, field ${String(field)}` : ''})`);
      return EXIT.failed;
    }
    throw err;
  }
}

if (process.argv[1] && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])) {
  const io: CommandIO = { stdout: (t) => console.log(t), stderr: (t) => console.error(t), env: process.env };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      // Interrupted: work the command started in this process may still be winding down.
      if (code === 130) process.exit(code);
      process.exitCode = code;
    },
    (err: Error) => {
      console.error(`nnunet: internal error: ${err.stack ?? err.message}`);
      process.exitCode = EXIT.failed;
    },
  );
}
