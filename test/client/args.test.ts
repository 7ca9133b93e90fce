import assert from 'node:assert/strict';
import { helpText, parseArgs, UsageError, type CommandSpec } from '../../client/args.js';

const spec: CommandSpec = {
  name: 'plan_and_preprocess',
  summary: 's',
  options: [
    { flags: ['-d'], dest: 'd', nargs: '+', required: true, help: 'datasets' },
    { flags: ['-c'], dest: 'c', nargs: '+', default: ['2d'], choices: ['2d', '3d_fullres', '3d_lowres'], help: 'configs' },
    { flags: ['-np'], dest: 'np', type: 'int', nargs: '+', help: 'processes' },
    { flags: ['-gpu_memory_target'], dest: 'gpu', type: 'float', help: 'GB' },
    { flags: ['--verify_dataset_integrity'], dest: 'verify', type: 'flag', help: 'check' },
  ],
  positionals: [{ dest: 'extra', help: 'x', optional: true }],
};

describe('argparse-style CLI parsing', () => {
  it("parses nnU-Net's single-dash long flags, nargs lists and store_true flags", () => {
    const a = parseArgs(spec, ['-d', '4', '5', '-c', '3d_fullres', '3d_lowres', '-np', '8', '4', '-gpu_memory_target', '8.5', '--verify_dataset_integrity']);
    assert.deepEqual(a, { d: ['4', '5'], c: ['3d_fullres', '3d_lowres'], np: [8, 4], gpu: 8.5, verify: true });
  });

  it('applies defaults and returns undefined for -h', () => {
    assert.deepEqual(parseArgs(spec, ['-d', '4']), { d: ['4'], c: ['2d'], np: undefined, gpu: undefined, verify: false });
    assert.equal(parseArgs(spec, ['-d', '4', '-h']), undefined);
  });

  it('names the argument and the reason on bad input', () => {
    assert.throws(() => parseArgs(spec, []), (e: unknown) => e instanceof UsageError && /required: -d/.test(e.message));
    assert.throws(() => parseArgs(spec, ['-d', '4', '-x']), /unrecognized argument: -x/);
    assert.throws(() => parseArgs(spec, ['-d', '4', '-c', '4d']), /invalid choice: '4d'/);
    assert.throws(() => parseArgs(spec, ['-d', '4', '-np', 'many']), /-np: invalid int value: 'many'/);
    assert.throws(() => parseArgs(spec, ['-d', '4', '-gpu_memory_target']), /expected a value/);
    assert.throws(() => parseArgs(spec, ['a', 'b', '-d', '4']), /unrecognized arguments: b/);
  });

  it('prints every option in the help', () => {
    const text = helpText(spec);
    for (const f of ['-d', '-c', '-np', '-gpu_memory_target', '--verify_dataset_integrity']) assert.ok(text.includes(f), f);
  });
});
