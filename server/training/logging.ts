// The fold's two logs: nnU-Net's readable text log `training_log_Y_M_D_HH_MM_SS.txt` with its
// lines ("Epoch 3", "Current learning rate: 0.00694", "Yayy! New best EMA pseudo Dice: ..."), and
// training_log.jsonl, one JSON event per line for programs. Appended synchronously, so a killed
// process leaves every line it printed.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EmitEvent, FoldEvent } from './events.js';

const pad2 = (n: number) => String(n).padStart(2, '0');

/** nnU-Net's log file name: training_log_%d_%d_%d_%02d_%02d_%02d.txt in local time. */
export function textLogName(t: Date): string {
  return `training_log_${t.getFullYear()}_${t.getMonth() + 1}_${t.getDate()}_${pad2(t.getHours())}_${pad2(t.getMinutes())}_${pad2(t.getSeconds())}.txt`;
}

/** Python's str(datetime.now()): "2026-11-26 18:35:38.123456" (local time, microseconds). */
export function pythonTimestamp(t: Date): string {
  const date = `${t.getFullYear()}-${pad2(t.getMonth() + 1)}-${pad2(t.getDate())}`;
  const micros = String(t.getMilliseconds() * 1000).padStart(6, '0');
  return `${date} ${pad2(t.getHours())}:${pad2(t.getMinutes())}:${pad2(t.getSeconds())}.${micros}`;
}

/** numpy's round(x, decimals) printed as Python prints the float. */
export function pyRound(x: number, decimals: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const f = 10 ** decimals;
  const v = Math.round(x * f) / f;
  const s = String(v);
  return Number.isInteger(v) && !s.includes('e') ? `${s}.0` : s;
}

/** A JSON line: NaN and ±Infinity become null (standard JSON, unlike Python's). */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
}

/** Events that are progress ticks or text, not records. */
const NOT_RECORDED = new Set<FoldEvent['type']>(['iteration', 'log']);

export class TrainingLogger {
  readonly textFile: string;
  readonly jsonlFile: string;

  constructor(
    readonly folder: string,
    private readonly emit: EmitEvent = () => {},
    startedAt = new Date(),
  ) {
    mkdirSync(folder, { recursive: true });
    this.textFile = join(folder, textLogName(startedAt));
    this.jsonlFile = join(folder, 'training_log.jsonl');
  }

  /** nnU-Net's print_to_log_file: "<timestamp>: a b c" (arguments joined by spaces). */
  print(...args: unknown[]): void {
    this.write([`${pythonTimestamp(new Date())}:`, ...args.map(String)].join(' '));
  }

  /** A line without the timestamp (banners, the plans dump). */
  printRaw(text: string): void {
    this.write(text);
  }

  private write(line: string): void {
    appendFileSync(this.textFile, line + '\n');
    this.emit({ type: 'log', line });
  }

  /** Passes an event on and records it in training_log.jsonl (progress ticks are not recorded). */
  event(e: FoldEvent): void {
    if (!NOT_RECORDED.has(e.type)) appendFileSync(this.jsonlFile, jsonLine({ time: Date.now() / 1000, ...e }) + '\n');
    this.emit(e);
  }
}

export const CITATION_BANNER = [
  '',
  '#######################################################################',
  'Please cite the following paper when using nnU-Net:',
  'Isensee, F., Jaeger, P. F., Kohl, S. A., Petersen, J., & Maier-Hein, K. H. (2021). nnU-Net: a self-configuring ' +
    'method for deep learning-based biomedical image segmentation. Nature methods, 18(2), 203-211.',
  '#######################################################################',
  '',
].join('\n');
