// Command-line parsing in the style of Python's argparse, because nnU-Net's commands use
// single-dash multi-letter flags (`-np`, `-pl`, `-gpu_memory_target`) and `nargs='+'` lists
// (`-c 2d 3d_fullres`), which commander, yargs and node:util.parseArgs cannot express; keeping
// nnU-Net's exact flags lets its users reuse their commands.

export type OptionType = 'string' | 'int' | 'float' | 'flag';

export interface OptionSpec {
  /** Every spelling, e.g. ['-d', '--dataset']. */
  flags: string[];
  /** Key in the parsed result. */
  dest: string;
  help: string;
  type?: OptionType;
  /** '+' takes one or more values, '*' zero or more; omitted takes exactly one. */
  nargs?: '+' | '*';
  required?: boolean;
  default?: unknown;
  choices?: string[];
  metavar?: string;
}

export interface PositionalSpec {
  dest: string;
  help: string;
  type?: Exclude<OptionType, 'flag'>;
  optional?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  description?: string;
  options?: OptionSpec[];
  positionals?: PositionalSpec[];
}

export type ParsedArgs = Record<string, unknown>;

/** A usage error: the message says which argument and why; the CLI prints it with the usage line. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

const HELP_FLAGS = ['-h', '--help'];

function convert(value: string, type: OptionType, name: string, command: string): unknown {
  if (type === 'int') {
    if (!/^[-+]?\d+$/.test(value)) throw new UsageError(`argument ${name}: invalid int value: '${value}'`, command);
    return Number(value);
  }
  if (type === 'float') {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`argument ${name}: invalid float value: '${value}'`, command);
    return n;
  }
  return value;
}

const looksLikeFlag = (token: string) => token.startsWith('-') && !/^-\d/.test(token) && token !== '-';

/** Parses `argv` (the tokens after the command name). Returns undefined when help was asked for. */
export function parseArgs(spec: CommandSpec, argv: string[]): ParsedArgs | undefined {
  if (argv.some((t) => HELP_FLAGS.includes(t))) return undefined;
  const options = spec.options ?? [];
  const byFlag = new Map<string, OptionSpec>();
  for (const o of options) for (const f of o.flags) byFlag.set(f, o);
  const result: ParsedArgs = {};
  for (const o of options) result[o.dest] = o.default ?? (o.type === 'flag' ? false : undefined);
  const positionals: string[] = [];
  const seen = new Set<string>();

  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!looksLikeFlag(token)) {
      positionals.push(token);
      continue;
    }
    const [flag, inline] = token.includes('=') && token.startsWith('--') ? [token.slice(0, token.indexOf('=')), token.slice(token.indexOf('=') + 1)] : [token, undefined];
    const o = byFlag.get(flag);
    if (!o) throw new UsageError(`unrecognized argument: ${flag}`, spec.name);
    seen.add(o.dest);
    const type = o.type ?? 'string';
    if (type === 'flag') {
      if (inline !== undefined) throw new UsageError(`argument ${flag}: takes no value`, spec.name);
      result[o.dest] = true;
      continue;
    }
    const values: string[] = inline !== undefined ? [inline] : [];
    if (o.nargs) {
      while (i + 1 < argv.length && !looksLikeFlag(argv[i + 1])) values.push(argv[++i]);
      if (o.nargs === '+' && values.length === 0) throw new UsageError(`argument ${flag}: expected at least one value`, spec.name);
    } else if (values.length === 0) {
      if (i + 1 >= argv.length || looksLikeFlag(argv[i + 1])) throw new UsageError(`argument ${flag}: expected a value`, spec.name);
      values.push(argv[++i]);
    }
    for (const v of values) {
      if (o.choices && !o.choices.includes(v)) {
        throw new UsageError(`argument ${flag}: invalid choice: '${v}' (choose from ${o.choices.join(', ')})`, spec.name);
      }
    }
    const converted = values.map((v) => convert(v, type, flag, spec.name));
    result[o.dest] = o.nargs ? converted : converted[0];
  }

  const missing = options.filter((o) => o.required && !seen.has(o.dest)).map((o) => o.flags[0]);
  if (missing.length > 0) throw new UsageError(`the following arguments are required: ${missing.join(', ')}`, spec.name);
  const posSpecs = spec.positionals ?? [];
  const requiredPos = posSpecs.filter((p) => !p.optional);
  if (positionals.length < requiredPos.length) {
    throw new UsageError(`the following arguments are required: ${requiredPos.slice(positionals.length).map((p) => p.dest).join(', ')}`, spec.name);
  }
  if (positionals.length > posSpecs.length) throw new UsageError(`unrecognized arguments: ${positionals.slice(posSpecs.length).join(' ')}`, spec.name);
  posSpecs.forEach((p, i) => {
    if (i < positionals.length) result[p.dest] = convert(positionals[i], p.type ?? 'string', p.dest, spec.name);
  });
  return result;
}

/** One usage line, argparse style. */
export function usage(spec: CommandSpec, prog = 'nnunet'): string {
  const parts = [`${prog} ${spec.name}`];
  for (const o of spec.options ?? []) {
    const meta = o.type === 'flag' ? '' : ` ${o.metavar ?? o.dest.toUpperCase()}${o.nargs ? ' ...' : ''}`;
    parts.push(o.required ? `${o.flags[0]}${meta}` : `[${o.flags[0]}${meta}]`);
  }
  for (const p of spec.positionals ?? []) parts.push(p.optional ? `[${p.dest}]` : p.dest);
  return `usage: ${parts.join(' ')}`;
}

/** Full help text of a command. */
export function helpText(spec: CommandSpec, prog = 'nnunet'): string {
  const lines = [usage(spec, prog), '', spec.description ?? spec.summary];
  const pos = spec.positionals ?? [];
  if (pos.length > 0) {
    lines.push('', 'positional arguments:');
    for (const p of pos) lines.push(`  ${p.dest.padEnd(28)} ${p.help}`);
  }
  lines.push('', 'options:', `  ${'-h, --help'.padEnd(28)} show this help message and exit`);
  for (const o of spec.options ?? []) {
    const meta = o.type === 'flag' ? '' : ` ${o.metavar ?? o.dest.toUpperCase()}${o.nargs ? ' ...' : ''}`;
    const names = `${o.flags.join(', ')}${meta}`;
    const extra = o.default !== undefined && o.type !== 'flag' ? ` (default: ${JSON.stringify(o.default)})` : '';
    lines.push(`  ${names.padEnd(28)} ${o.help}${extra}`);
  }
  return lines.join('\n');
}
