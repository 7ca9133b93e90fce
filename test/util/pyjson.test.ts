import assert from 'node:assert/strict';
import { dumpPythonJson, parsePythonJson } from '../../server/util/pyjson.js';
import { pythonHas, runPython } from '../helpers.js';

describe('Python-compatible JSON', () => {
  it('writes sorted keys, 4-space indent and NaN/Infinity literals, and reads them back', () => {
    const text = dumpPythonJson({ b: NaN, a: [1, Infinity, -Infinity], s: 'NaN' });
    assert.equal(text, '{\n    "a": [\n        1,\n        Infinity,\n        -Infinity\n    ],\n    "b": NaN,\n    "s": "NaN"\n}');
    const back = parsePythonJson(text) as { a: number[]; b: number; s: string };
    assert.ok(Number.isNaN(back.b));
    assert.deepEqual(back.a, [1, Infinity, -Infinity]);
    assert.equal(back.s, 'NaN');
  });

  it("is read by Python's json module and reads what it writes", function () {
    if (!pythonHas('json')) this.skip();
    const text = dumpPythonJson({ dice: NaN, x: { y: 0.5 } });
    const roundTrip = runPython('import json,sys; d=json.loads(sys.argv[1]); print(json.dumps(d, sort_keys=True, indent=4))', [text]).toString().trim();
    assert.equal(roundTrip, text);
  });
});
