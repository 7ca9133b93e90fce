// What every CLI command provides: its argparse-style spec and a run function returning the exit code.
import type { CommandSpec, ParsedArgs } from '../args.js';

export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  spec: CommandSpec;
  run(args: ParsedArgs, io: CommandIO): Promise<number>;
}

/** An nnU-Net command that this version does not provide yet; running it says what is missing. */
export interface PlannedCommand {
  name: string;
  summary: string;
  missing: string;
}

/** Exit codes: 0 success, 1 the work found problems or failed, 2 usage error, 3 not implemented. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unimplemented: 3 } as const;
