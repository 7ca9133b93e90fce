// The module tree, after torch.nn.Module: parameters and children registered in order, dotted
// state-dict keys, load with a report of missing / unexpected / mis-shaped keys, train/eval.
// Aliases model nnU-Net's double registrations (`all_modules.*`, `decoder.encoder.*`): their keys
// are written only on request and are accepted-and-ignored when loading.
import type { Device, Tensor } from '../torch.js';
import type { OnnxGraph } from '../onnx/graph.js';
import { Parameter } from './parameter.js';

/** A weight as the loaders hand it over: TorchTensor (checkpoint), SafeTensor, or plain data. */
export interface WeightSource {
  readonly shape: readonly number[];
  toFloat32?: () => Float32Array;
  readonly data?: ArrayLike<number> | ArrayLike<bigint>;
  readonly dtype?: string;
}

export interface StateTensor {
  shape: number[];
  data: Float32Array;
}

export interface ShapeMismatch {
  key: string;
  expected: number[];
  got: number[];
}

export interface LoadReport {
  loaded: string[];
  /** Parameters of the module with no entry in the source. */
  missing: string[];
  /** Source keys that name no parameter and no alias. */
  unexpected: string[];
  /** Alias keys (nnU-Net's duplicates) found in the source and ignored. */
  ignoredAliases: string[];
  mismatched: ShapeMismatch[];
}

export class StateDictError extends Error {
  constructor(
    message: string,
    readonly report: LoadReport,
  ) {
    super(message);
    this.name = 'StateDictError';
  }
}

interface Entry {
  name: string;
  module: Module;
  alias: boolean;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

function toFloat32(key: string, w: WeightSource): Float32Array {
  if (w.toFloat32) return w.toFloat32();
  const d = w.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Float64Array) return Float32Array.from(d);
  throw new Error(`${key}: cannot read ${w.dtype ?? 'this'} weight data as float32`);
}

export abstract class Module {
  training = true;
  readonly #params = new Map<string, Parameter>();
  readonly #entries: Entry[] = [];

  /** Registers a parameter under `name` (the last part of its state-dict key). */
  protected addParameter(name: string, p: Parameter): Parameter {
    if (this.#params.has(name) || this.#entries.some((e) => e.name === name)) throw new Error(`duplicate name '${name}'`);
    this.#params.set(name, p);
    return p;
  }

  /** Registers a child module; registration order is state-dict order. */
  protected addModule<M extends Module>(name: string, m: M): M {
    if (this.#params.has(name) || this.#entries.some((e) => e.name === name)) throw new Error(`duplicate name '${name}'`);
    this.#entries.push({ name, module: m, alias: false });
    return m;
  }

  /** Registers a second name for a module registered elsewhere (nnU-Net's duplicate keys). */
  protected addAlias(name: string, m: Module): void {
    this.#entries.push({ name, module: m, alias: true });
  }

  namedChildren(): [string, Module][] {
    return this.#entries.filter((e) => !e.alias).map((e) => [e.name, e.module]);
  }

  /** Every module of the tree, this one first (pre-order, as torch's named_modules). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /**
   * [key, parameter] pairs in state-dict order: own parameters, then each child's. With
   * `aliases`, keys under alias names are listed too (nnU-Net's full key set, tensors repeated).
   */
  namedParameters(prefix = '', { aliases = false } = {}): [string, Parameter][] {
    const join = (n: string) => (prefix ? `${prefix}.${n}` : n);
    const out: [string, Parameter][] = [];
    for (const [name, p] of this.#params) out.push([join(name), p]);
    for (const e of this.#entries) {
      if (e.alias && !aliases) continue;
      out.push(...e.module.namedParameters(join(e.name), { aliases }));
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  /**
   * Weights by state-dict key (CPU copies when materialized). By default only the canonical keys,
   * which is what our own checkpoints store; `aliases: true` adds nnU-Net's duplicate keys so
   * PyTorch's strict load_state_dict accepts the result.
   */
  stateDict({ aliases = false } = {}): Map<string, StateTensor> {
    const out = new Map<string, StateTensor>();
    const cache = new Map<Parameter, Float32Array>();
    for (const [key, p] of this.namedParameters('', { aliases })) {
      let data = cache.get(p);
      if (!data) {
        data = p.values();
        cache.set(p, data);
      }
      out.set(key, { shape: [...p.shape], data });
    }
    return out;
  }

  /**
   * Loads weights by key. Alias keys are accepted and ignored. Strict (default): nothing is loaded
   * unless every parameter is present with its shape and no key is unknown; a StateDictError names
   * each offending key. Non-strict: loads what matches (shape included) and reports the rest.
   */
  loadStateDict(source: Map<string, WeightSource> | Record<string, WeightSource>, { strict = true } = {}): LoadReport {
    const entries = source instanceof Map ? source : new Map(Object.entries(source));
    const own = new Map(this.namedParameters());
    const aliasKeys = new Set(this.namedParameters('', { aliases: true }).map(([k]) => k).filter((k) => !own.has(k)));
    const report: LoadReport = { loaded: [], missing: [], unexpected: [], ignoredAliases: [], mismatched: [] };
    const toLoad: [Parameter, string, WeightSource][] = [];
    for (const [key, w] of entries) {
      const p = own.get(key);
      if (p) {
        if (sameShape(p.shape, w.shape)) toLoad.push([p, key, w]);
        else report.mismatched.push({ key, expected: [...p.shape], got: [...w.shape] });
      } else if (aliasKeys.has(key)) report.ignoredAliases.push(key);
      else report.unexpected.push(key);
    }
    for (const key of own.keys()) if (!entries.has(key)) report.missing.push(key);
    if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
      const parts = [
        ...report.missing.map((k) => `missing ${k} ${fmt(own.get(k)!.shape)}`),
        ...report.unexpected.map((k) => `unexpected ${k} ${fmt(entries.get(k)!.shape)}`),
        ...report.mismatched.map((m) => `shape mismatch ${m.key}: network ${fmt(m.expected)}, weights ${fmt(m.got)}`),
      ];
      throw new StateDictError(
        `state dict does not fit the network (${report.missing.length} missing, ${report.unexpected.length} unexpected, ` +
          `${report.mismatched.length} mis-shaped; nothing loaded):\n  ${parts.join('\n  ')}`,
        report,
      );
    }
    for (const [p, key, w] of toLoad) {
      p.setValues(toFloat32(key, w));
      report.loaded.push(key);
    }
    return report;
  }

  /** Sets training mode on the whole tree (dropout active); InstanceNorm behaves the same in both. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Moves every parameter into libtorch on `device` (for training or libtorch inference). */
  materialize(device: Device = 'cpu'): this {
    for (const p of this.parameters()) p.materialize(device);
    return this;
  }

  /** The parameters' libtorch tensors, in state-dict order (what the optimiser updates). */
  parameterTensors(): Tensor[] {
    return this.parameters().map((p) => p.tensor);
  }

  /** Copies the weights back to CPU arrays and releases the libtorch tensors. */
  release(): this {
    for (const p of this.parameters()) p.release();
    return this;
  }
}

/** A module with one input and one output, runnable on libtorch and exportable to ONNX. */
export abstract class Layer extends Module {
  abstract forward(x: Tensor): Tensor;
  /** Appends this module's ONNX nodes reading `input`; returns the name of its output. */
  abstract toOnnx(g: OnnxGraph, input: string): string;
}
