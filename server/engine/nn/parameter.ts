// A learnable tensor that lives as a plain Float32Array until training needs libtorch. An
// inference-only deployment builds networks, loads nnU-Net weights and exports ONNX without ever
// loading the binding; `materialize()` moves the values into a libtorch tensor for autograd.
import { noGrad, tensor as torchTensor, tidy, type Device, type Tensor } from '../torch.js';

export class Parameter {
  readonly shape: readonly number[];
  readonly numel: number;
  #values: Float32Array | null;
  #tensor: Tensor | null = null;

  /** A parameter of `shape`, zero-filled unless `values` (copied by reference) is given. */
  constructor(shape: readonly number[], values?: Float32Array) {
    this.shape = Object.freeze([...shape]);
    this.numel = shape.reduce((a, b) => a * b, 1);
    if (values && values.length !== this.numel) {
      throw new Error(`Parameter [${shape.join(', ')}] needs ${this.numel} values, got ${values.length}`);
    }
    this.#values = values ?? new Float32Array(this.numel);
  }

  /** Whether the values are held by a libtorch tensor (after materialize()). */
  get isMaterialized(): boolean {
    return this.#tensor !== null;
  }

  /**
   * The values in row-major order. Without libtorch this is the stored array itself (no copy);
   * once materialized it is a fresh CPU copy of the tensor, so writes to it change nothing.
   */
  values(): Float32Array {
    if (this.#tensor === null) return this.#values as Float32Array;
    const t = this.#tensor;
    return tidy(() => (t.device === 'cpu' ? t : t.to('cpu')).detach().toFloat32Array());
  }

  /** Replaces every value; works with or without libtorch. */
  setValues(values: ArrayLike<number>): void {
    if (values.length !== this.numel) {
      throw new Error(`Parameter [${this.shape.join(', ')}] needs ${this.numel} values, got ${values.length}`);
    }
    if (this.#tensor === null) {
      (this.#values as Float32Array).set(values);
      return;
    }
    const t = this.#tensor;
    const src = values instanceof Float32Array ? values : Float32Array.from(values);
    noGrad(() =>
      tidy(() => {
        t.copy_(torchTensor(src, [...this.shape], { device: t.device as Device }));
      }),
    );
  }

  fill(value: number): void {
    if (this.#tensor === null) (this.#values as Float32Array).fill(value);
    else {
      const t = this.#tensor;
      noGrad(() => t.fill_(value));
    }
  }

  /**
   * Moves the values into a libtorch tensor on `device` that requires grad (idempotent; moves an
   * already materialized tensor to another device). The CPU array is dropped to halve the memory.
   */
  materialize(device: Device = 'cpu'): Tensor {
    if (this.#tensor !== null) {
      if (this.#tensor.device === device || (device === 'cuda' && this.#tensor.device === 'cuda:0')) return this.#tensor;
      const old = this.#tensor;
      const moved = noGrad(() => old.to(device).keep());
      old.dispose();
      moved.requiresGrad_(true);
      this.#tensor = moved;
      return moved;
    }
    const t = torchTensor(this.#values as Float32Array, [...this.shape], { device }).keep();
    t.requiresGrad_(true);
    this.#tensor = t;
    this.#values = null;
    return t;
  }

  /** The libtorch tensor, materialized on the CPU at first use. */
  get tensor(): Tensor {
    return this.#tensor ?? this.materialize();
  }

  /** Copies the values back into a CPU Float32Array and releases the libtorch tensor. */
  release(): void {
    if (this.#tensor === null) return;
    this.#values = this.values();
    this.#tensor.dispose();
    this.#tensor = null;
  }
}
