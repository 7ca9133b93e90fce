// The Tensor class over a native libtorch handle, with PyTorch's elementwise, shape, reduction
// and autograd methods (broadcasting and type promotion are libtorch's), and the factories.
// Native memory is released by dispose() or by the enclosing tidy() scope (see scope.ts).
import { lib, type Handle } from './native.js';
import { keep as keepTensor, setOwnedCheck, track } from './scope.js';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
/** 'cpu', 'cuda' or 'cuda:N'. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
export type Dims = number | number[];
type Operand = Tensor | number | boolean;

const DTYPES = new Set<string>(['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);

export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

const dimList = (d: Dims | undefined | null): number[] | null => (d === undefined || d === null ? null : typeof d === 'number' ? [d] : d);
const raw = (x: Operand): Handle | number | boolean => (x instanceof Tensor ? x.handle : x);

export class Tensor {
  #h: Handle | null;

  /** Wraps a handle the binding just returned; the new tensor joins the open tidy() scope. */
  static fromHandle(h: Handle, tracked = true): Tensor {
    const t = new Tensor(h);
    return tracked ? track(t) : t;
  }

  private constructor(h: Handle) {
    this.#h = h;
  }

  /** The native handle; throws a clear error once the tensor was disposed. */
  get handle(): Handle {
    if (this.#h === null) {
      throw new Error(
        'Tensor was disposed and can no longer be used (released by dispose() or by the tidy() scope it was ' +
          'created in; return it from the scope or keep() it to use it afterwards)',
      );
    }
    return this.#h;
  }

  get isDisposed(): boolean {
    return this.#h === null;
  }

  /** Releases the native memory now; safe to call twice. */
  dispose(): void {
    if (this.#h !== null) {
      lib().dispose(this.#h);
      this.#h = null;
    }
  }

  /** Exempts this tensor from the open tidy() scopes (see keep()). */
  keep(): this {
    return keepTensor(this);
  }

  get shape(): number[] {
    return lib().shape(this.handle);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return lib().numel(this.handle);
  }
  get dtype(): DType {
    return lib().dtype(this.handle) as DType;
  }
  get device(): string {
    return lib().device(this.handle);
  }

  /** A copy of the values in row-major order; int64 as BigInt64Array, bool as Uint8Array. */
  data(): TypedArray {
    return lib().data(this.handle);
  }

  toFloat32Array(): Float32Array {
    if (this.dtype === 'float32') return lib().data(this.handle) as Float32Array;
    const f = lib().to(this.handle, 'float32', null, false);
    try {
      return lib().data(f) as Float32Array;
    } finally {
      lib().dispose(f);
    }
  }

  /** The value of a one-element tensor. */
  item(): number {
    return Number(lib().item(this.handle));
  }

  private wrap(h: Handle): Tensor {
    return Tensor.fromHandle(h);
  }
  private un(op: string): Tensor {
    return this.wrap(lib().unary(op, this.handle));
  }
  private bin(op: string, other: Operand): Tensor {
    return this.wrap(lib().binary(op, this.handle, raw(other)));
  }

  /** Converts to a dtype or moves to a device (a new tensor; the same storage when nothing changes). */
  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    const o = typeof target === 'string' ? (DTYPES.has(target) ? { dtype: target as DType } : { device: target as Device }) : target;
    return this.wrap(lib().to(this.handle, o.dtype ?? null, o.device ?? null, false));
  }
  clone(): Tensor {
    return this.wrap(lib().clone(this.handle));
  }
  detach(): Tensor {
    return this.wrap(lib().detach(this.handle));
  }
  contiguous(): Tensor {
    return this.wrap(lib().contiguous(this.handle));
  }

  // shape
  reshape(shape: number[]): Tensor {
    return this.wrap(lib().reshape(this.handle, shape));
  }
  view(shape: number[]): Tensor {
    return this.wrap(lib().view(this.handle, shape));
  }
  flatten(): Tensor {
    return this.reshape([-1]);
  }
  permute(dims: number[]): Tensor {
    return this.wrap(lib().permute(this.handle, dims));
  }
  transpose(d0: number, d1: number): Tensor {
    return this.wrap(lib().transpose(this.handle, d0, d1));
  }
  squeeze(dim?: number): Tensor {
    return this.wrap(lib().squeeze(this.handle, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return this.wrap(lib().unsqueeze(this.handle, dim));
  }
  expand(shape: number[]): Tensor {
    return this.wrap(lib().expand(this.handle, shape));
  }
  repeat(repeats: number[]): Tensor {
    return this.wrap(lib().repeat(this.handle, repeats));
  }
  flip(dims: Dims): Tensor {
    return this.wrap(lib().flip(this.handle, dimList(dims) ?? []));
  }
  /** x[start:end:step] along dim (end omitted: to the end; negatives count from the end). */
  slice(dim: number, start: number, end?: number, step = 1): Tensor {
    return this.wrap(lib().slice(this.handle, dim, start, end ?? null, step));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return this.wrap(lib().narrow(this.handle, dim, start, length));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return this.wrap(lib().indexSelect(this.handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return this.wrap(lib().gather(this.handle, dim, index.handle));
  }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    return this.wrap(lib().scatter(this.handle, dim, index.handle, raw(src)));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return this.wrap(lib().scatterAdd(this.handle, dim, index.handle, src.handle));
  }
  maskedFill(mask: Tensor, value: Tensor | number): Tensor {
    return this.wrap(lib().maskedFill(this.handle, mask.handle, raw(value)));
  }
  maskedSelect(mask: Tensor): Tensor {
    return this.wrap(lib().maskedSelect(this.handle, mask.handle));
  }
  nonzero(): Tensor {
    return this.wrap(lib().nonzero(this.handle));
  }

  // elementwise
  add(o: Operand): Tensor {
    return this.bin('add', o);
  }
  sub(o: Operand): Tensor {
    return this.bin('sub', o);
  }
  mul(o: Operand): Tensor {
    return this.bin('mul', o);
  }
  div(o: Operand): Tensor {
    return this.bin('div', o);
  }
  pow(o: Operand): Tensor {
    return this.bin('pow', o);
  }
  remainder(o: Operand): Tensor {
    return this.bin('remainder', o);
  }
  maximum(o: Operand): Tensor {
    return this.bin('maximum', o);
  }
  minimum(o: Operand): Tensor {
    return this.bin('minimum', o);
  }
  matmul(o: Tensor): Tensor {
    return this.bin('matmul', o);
  }
  eq(o: Operand): Tensor {
    return this.bin('eq', o);
  }
  ne(o: Operand): Tensor {
    return this.bin('ne', o);
  }
  gt(o: Operand): Tensor {
    return this.bin('gt', o);
  }
  lt(o: Operand): Tensor {
    return this.bin('lt', o);
  }
  ge(o: Operand): Tensor {
    return this.bin('ge', o);
  }
  le(o: Operand): Tensor {
    return this.bin('le', o);
  }
  logicalAnd(o: Operand): Tensor {
    return this.bin('logicalAnd', o);
  }
  logicalOr(o: Operand): Tensor {
    return this.bin('logicalOr', o);
  }
  neg(): Tensor {
    return this.un('neg');
  }
  exp(): Tensor {
    return this.un('exp');
  }
  log(): Tensor {
    return this.un('log');
  }
  log1p(): Tensor {
    return this.un('log1p');
  }
  sqrt(): Tensor {
    return this.un('sqrt');
  }
  rsqrt(): Tensor {
    return this.un('rsqrt');
  }
  abs(): Tensor {
    return this.un('abs');
  }
  sign(): Tensor {
    return this.un('sign');
  }
  floor(): Tensor {
    return this.un('floor');
  }
  ceil(): Tensor {
    return this.un('ceil');
  }
  round(): Tensor {
    return this.un('round');
  }
  reciprocal(): Tensor {
    return this.un('reciprocal');
  }
  square(): Tensor {
    return this.un('square');
  }
  sin(): Tensor {
    return this.un('sin');
  }
  cos(): Tensor {
    return this.un('cos');
  }
  tanh(): Tensor {
    return this.un('tanh');
  }
  sigmoid(): Tensor {
    return this.un('sigmoid');
  }
  relu(): Tensor {
    return this.un('relu');
  }
  logicalNot(): Tensor {
    return this.un('logicalNot');
  }
  isnan(): Tensor {
    return this.un('isnan');
  }
  isfinite(): Tensor {
    return this.un('isfinite');
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return this.wrap(lib().clamp(this.handle, min ?? null, max ?? null));
  }
  leakyRelu(negativeSlope = 0.01): Tensor {
    return this.wrap(lib().leakyRelu(this.handle, negativeSlope));
  }
  softmax(dim: number): Tensor {
    return this.wrap(lib().softmax(this.handle, dim));
  }
  logSoftmax(dim: number): Tensor {
    return this.wrap(lib().logSoftmax(this.handle, dim));
  }

  // reductions (dims omitted: over all elements)
  sum(dims?: Dims, keepdim = false): Tensor {
    return this.wrap(lib().reduce('sum', this.handle, dimList(dims), keepdim));
  }
  mean(dims?: Dims, keepdim = false): Tensor {
    return this.wrap(lib().reduce('mean', this.handle, dimList(dims), keepdim));
  }
  /** Maximum values (torch.amax with dims); use argmax for the indices. */
  max(dims?: Dims, keepdim = false): Tensor {
    return this.wrap(lib().reduce('max', this.handle, dimList(dims), keepdim));
  }
  min(dims?: Dims, keepdim = false): Tensor {
    return this.wrap(lib().reduce('min', this.handle, dimList(dims), keepdim));
  }
  prod(dims?: Dims, keepdim = false): Tensor {
    return this.wrap(lib().reduce('prod', this.handle, dimList(dims), keepdim));
  }
  any(): Tensor {
    return this.wrap(lib().reduce('any', this.handle));
  }
  all(): Tensor {
    return this.wrap(lib().reduce('all', this.handle));
  }
  var(dims?: Dims, { unbiased = true, keepdim = false } = {}): Tensor {
    return this.wrap(lib().variance(this.handle, dimList(dims), unbiased, keepdim, false));
  }
  std(dims?: Dims, { unbiased = true, keepdim = false } = {}): Tensor {
    return this.wrap(lib().variance(this.handle, dimList(dims), unbiased, keepdim, true));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return this.wrap(lib().argmax(this.handle, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return this.wrap(lib().argmin(this.handle, dim ?? null, keepdim));
  }
  /** Vector p-norm (torch.linalg.vector_norm). */
  norm(p = 2, dims?: Dims, keepdim = false): Tensor {
    return this.wrap(lib().norm(this.handle, p, dimList(dims), keepdim));
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return lib().allclose(this.handle, other.handle, rtol, atol);
  }

  // in place (return this); under autograd only on tensors that do not require grad, or in noGrad()
  add_(o: Operand): this {
    return this.inplace('add', o);
  }
  sub_(o: Operand): this {
    return this.inplace('sub', o);
  }
  mul_(o: Operand): this {
    return this.inplace('mul', o);
  }
  div_(o: Operand): this {
    return this.inplace('div', o);
  }
  copy_(src: Tensor): this {
    return this.inplace('copy', src);
  }
  fill_(value: number | boolean): this {
    return this.inplace('fill', value);
  }
  zero_(): this {
    return this.inplace('zero');
  }
  clamp_(min?: number | null, max?: number | null): this {
    return this.inplace('clamp', min ?? null, max ?? null);
  }
  uniform_(from = 0, to = 1): this {
    return this.inplace('uniform', from, to);
  }
  normal_(mean = 0, std = 1): this {
    return this.inplace('normal', mean, std);
  }
  bernoulli_(p = 0.5): this {
    return this.inplace('bernoulli', p);
  }
  private inplace(op: string, a?: Operand | null, b?: Operand | null): this {
    lib().inplace(op, this.handle, a === undefined || a === null ? null : raw(a), b === undefined || b === null ? null : raw(b));
    return this;
  }

  // autograd
  get requiresGrad(): boolean {
    return lib().requiresGrad(this.handle);
  }
  requiresGrad_(on = true): this {
    lib().setRequiresGrad(this.handle, on);
    return this;
  }
  get isLeaf(): boolean {
    return lib().isLeaf(this.handle);
  }
  /** The accumulated gradient as a new tensor sharing its storage (dispose it, or read it in tidy()). */
  get grad(): Tensor | null {
    const g = lib().grad(this.handle);
    return g === null ? null : this.wrap(g);
  }
  set grad(g: Tensor | null) {
    lib().setGrad(this.handle, g === null ? null : g.handle);
  }
  backward(grad?: Tensor, { retainGraph }: { retainGraph?: boolean } = {}): void {
    lib().backward(this.handle, grad ? grad.handle : null, retainGraph ?? null);
  }

  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

setOwnedCheck((v: unknown): v is Tensor => v instanceof Tensor);

function made(h: Handle, o: FactoryOptions = {}): Tensor {
  const t = Tensor.fromHandle(h);
  if (o.requiresGrad) lib().setRequiresGrad(h, true);
  return t;
}

function arrayDType(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

/**
 * A tensor with a copy of `data` (shape defaults to [data.length]). The dtype defaults to the
 * array's; a different one converts (Int32Array -> 'int64', Uint8Array -> 'bool', number[] -> float32).
 */
export function tensor(data: TypedArray | number[], shape?: number[], opts: FactoryOptions = {}): Tensor {
  // number[] goes through float64 when the target needs more than float32's 24-bit mantissa.
  const wide = opts.dtype === 'float64' || opts.dtype === 'int64' || opts.dtype === 'int32';
  const arr = Array.isArray(data) ? (wide ? Float64Array.from(data) : Float32Array.from(data)) : data;
  const dtype = opts.dtype ?? (Array.isArray(data) ? 'float32' : arrayDType(arr));
  let h = lib().fromArray(arr, shape ?? [arr.length], dtype);
  if (opts.device && opts.device !== 'cpu') {
    const moved = lib().to(h, null, opts.device, false);
    lib().dispose(h);
    h = moved;
  }
  return made(h, opts);
}

export function scalar(value: number, opts: FactoryOptions = {}): Tensor {
  return made(lib().full([], value, opts.dtype ?? 'float32', opts.device ?? null), opts);
}
export function zeros(shape: number[], opts: FactoryOptions = {}): Tensor {
  return made(lib().zeros(shape, opts.dtype ?? null, opts.device ?? null), opts);
}
export function ones(shape: number[], opts: FactoryOptions = {}): Tensor {
  return made(lib().ones(shape, opts.dtype ?? null, opts.device ?? null), opts);
}
export function empty(shape: number[], opts: FactoryOptions = {}): Tensor {
  return made(lib().empty(shape, opts.dtype ?? null, opts.device ?? null), opts);
}
export function full(shape: number[], value: number | boolean, opts: FactoryOptions = {}): Tensor {
  return made(lib().full(shape, value, opts.dtype ?? null, opts.device ?? null), opts);
}
export function zerosLike(t: Tensor, opts: FactoryOptions = {}): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device as Device, ...opts });
}
export function onesLike(t: Tensor, opts: FactoryOptions = {}): Tensor {
  return ones(t.shape, { dtype: t.dtype, device: t.device as Device, ...opts });
}
/** [start, end) with step; int64 unless a dtype is given. */
export function arange(start: number, end: number, step = 1, opts: FactoryOptions = {}): Tensor {
  return made(lib().arange(start, end, step, opts.dtype ?? null, opts.device ?? null), opts);
}
export function linspace(start: number, end: number, steps: number, opts: FactoryOptions = {}): Tensor {
  return made(lib().linspace(start, end, steps, opts.dtype ?? null, opts.device ?? null), opts);
}
/** Uniform on [0, 1). */
export function rand(shape: number[], opts: FactoryOptions = {}): Tensor {
  return made(lib().rand(shape, opts.dtype ?? null, opts.device ?? null), opts);
}
export function randn(shape: number[], opts: FactoryOptions = {}): Tensor {
  return made(lib().randn(shape, opts.dtype ?? null, opts.device ?? null), opts);
}
/** Integers in [low, high). */
export function randint(low: number, high: number, shape: number[], opts: FactoryOptions = {}): Tensor {
  return made(lib().randint(low, high, shape, opts.dtype ?? null, opts.device ?? null), opts);
}
export function randperm(n: number, opts: FactoryOptions = {}): Tensor {
  return made(lib().randperm(n, opts.dtype ?? null, opts.device ?? null), opts);
}
export function cat(tensors: Tensor[], dim = 0): Tensor {
  return Tensor.fromHandle(lib().cat(tensors.map((t) => t.handle), dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return Tensor.fromHandle(lib().stack(tensors.map((t) => t.handle), dim));
}
/** cond ? a : b elementwise, with broadcasting. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  return Tensor.fromHandle(lib().where(cond.handle, raw(a), raw(b)));
}
/** Native tensors alive now (not disposed, not yet collected); for leak tests. */
export function liveTensors(): number {
  return lib().liveTensors();
}
