// The ONNX graph under construction, as plain data: each module appends its own nodes and names
// its weights as initializers (named by their state-dict keys, so a graph reads like the
// checkpoint). Serialisation to protobuf lives in export.ts; nothing here touches libtorch.
import type { Parameter } from '../nn/parameter.js';

export type OnnxAttribute =
  | { type: 'int'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'float'; value: number };

export const int = (value: number): OnnxAttribute => ({ type: 'int', value });
export const ints = (value: readonly number[]): OnnxAttribute => ({ type: 'ints', value: [...value] });
export const float = (value: number): OnnxAttribute => ({ type: 'float', value });

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttribute>;
}

export interface OnnxInitializer {
  name: string;
  shape: number[];
  data: Float32Array;
}

export class OnnxGraph {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxInitializer[] = [];
  readonly #paramNames: Map<Parameter, string>;
  readonly #emitted = new Set<Parameter>();
  readonly #used = new Set<string>();

  /** `paramNames` maps every parameter of the exported network to its state-dict key. */
  constructor(paramNames: Map<Parameter, string>) {
    this.#paramNames = paramNames;
  }

  /** A name not used yet, derived from `hint`. */
  unique(hint: string): string {
    let name = hint;
    for (let i = 1; this.#used.has(name); i++) name = `${hint}_${i}`;
    this.#used.add(name);
    return name;
  }

  /** Declares a graph input or other externally defined name so later nodes do not reuse it. */
  reserve(name: string): string {
    if (this.#used.has(name)) throw new Error(`ONNX name '${name}' is already used`);
    this.#used.add(name);
    return name;
  }

  /** The initializer holding a parameter's current values, added on first use. */
  param(p: Parameter): string {
    const name = this.#paramNames.get(p);
    if (name === undefined) throw new Error('ONNX export: a parameter does not belong to the exported network');
    if (!this.#emitted.has(p)) {
      this.#emitted.add(p);
      this.reserve(name);
      // values() is the stored array without libtorch; copy so later training cannot alter the graph.
      this.initializers.push({ name, shape: [...p.shape], data: Float32Array.from(p.values()) });
    }
    return name;
  }

  /** A constant float tensor (e.g. the unit scale of a non-affine InstanceNormalization). */
  constant(hint: string, shape: number[], data: Float32Array): string {
    const name = this.unique(hint);
    this.initializers.push({ name, shape, data });
    return name;
  }

  /** Appends a node with one output and returns the output's name. */
  node(opType: string, inputs: string[], attributes: Record<string, OnnxAttribute> = {}, hint = opType): string {
    const name = this.unique(hint);
    this.nodes.push({ opType, name, inputs, outputs: [name], attributes });
    return name;
  }

  /** Renames a value produced by a node (to give the graph output a stable name). */
  renameOutput(from: string, to: string): void {
    this.reserve(to);
    for (const n of this.nodes) {
      n.outputs = n.outputs.map((o) => (o === from ? to : o));
      n.inputs = n.inputs.map((i) => (i === from ? to : i));
    }
  }
}
