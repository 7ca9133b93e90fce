#!/usr/bin/env node
// `nnunet <command>`: nnU-Net v2's commands under one program, with the same flags
// (`nnUNetv2_plan_and_preprocess -d 4` becomes `nnunet plan_and_preprocess -d 4`).
// The command layer only parses and prints; the work is done by the stage modules.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { helpText, parseArgs, usage, UsageError } from './args.js';
import { COMMANDS, PLANNED } from './commands/index.js';
import { EXIT, type CommandIO } from './commands/types.js';
import { DatasetError } from '../server/dataset/errors.js';
import { ImageFormatError } from '../server/io/errors.js';

function mainHelp(): string {
  const width = Math.max(...[...COMMANDS.map((c) => c.spec.name), ...PLANNED.map((p) => p.name)].map((n) => n.length)) + 2;
  return [
    'usage: nnunet <command> [options]   (nnunet <command> -h for its options)',
    '',
    'nnU-Net v2 as a server and a command-line tool.',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)} ${c.spec.summary}`),
    '',
    'nnU-Net commands not available in this version yet:',
    ...PLANNED.map((p) => `  ${p.name.padEnd(width)} ${p.summary}`),
    '',
    'Data roots: nnUNet_raw, nnUNet_preprocessed, nnUNet_results, else folders under NNUNET_HOME (default ./nnunet_data).',
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
    if (err instanceof DatasetError || err instanceof ImageFormatError) {
      io.stderr(`nnunet ${command.spec.name}: error: ${err.message}`);
      return EXIT.failed;
    }
    throw err;
  }
}

if (process.argv[1] && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])) {
  const io: CommandIO = { stdout: (t) => console.log(t), stderr: (t) => console.error(t), env: process.env };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      console.error(`nnunet: internal error: ${err.stack ?? err.message}`);
      process.exitCode = EXIT.failed;
    },
  );
}
