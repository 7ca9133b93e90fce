// numpy's legacy `RandomState` for the draws nnU-Net's results depend on: MT19937 seeded with
// `init_genrand`, numpy's masked-rejection bounded integers (`randint`, the fingerprint's
// `choice(replace=True)`), and the legacy `shuffle` / `permutation` / `choice(replace=False)` of the
// cross-validation split and class locations. No npm package reproduces numpy's legacy stream.

const N = 624;
const M = 397;

export class RandomState {
  private readonly mt = new Uint32Array(N);
  /** The current block of 624 outputs, tempered once per twist so draws are plain array reads. */
  private readonly out = new Uint32Array(N);
  private index = N;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an integer in [0, 2**32 - 1], got ${seed}`);
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    // The textbook three-part loop: no modulo in the hot path.
    let i = 0;
    for (; i < N - M; i++) {
      const y = (mt[i] & 0x80000000) | (mt[i + 1] & 0x7fffffff);
      mt[i] = mt[i + M] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    for (; i < N - 1; i++) {
      const y = (mt[i] & 0x80000000) | (mt[i + 1] & 0x7fffffff);
      mt[i] = mt[i + M - N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    const y = (mt[N - 1] & 0x80000000) | (mt[0] & 0x7fffffff);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    const out = this.out;
    for (let i = 0; i < N; i++) {
      let y = mt[i];
      y ^= y >>> 11;
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= y >>> 18;
      out[i] = y >>> 0;
    }
    this.index = 0;
  }

  /** genrand_int32: the next 32-bit output of the generator. */
  nextUint32(): number {
    if (this.index >= N) this.twist();
    return this.out[this.index++];
  }

  /**
   * `randint(low, high, size)` for ranges below 2**32, filling `out`: legacy numpy draws a 32-bit
   * number, masks it to the smallest covering power of two and rejects values above the range.
   */
  randintInto(low: number, high: number, out: Uint32Array | Int32Array | Float64Array): void {
    const range = high - low - 1;
    if (!Number.isInteger(range) || range < 0) throw new RangeError(`randint needs low < high, got ${low}, ${high}`);
    if (range > 0xffffffff) throw new RangeError('randint ranges of 2**32 or more are not implemented');
    if (range === 0) {
      out.fill(low);
      return;
    }
    let mask = range;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    const block = this.out;
    let index = this.index;
    for (let i = 0; i < out.length; i++) {
      let v: number;
      do {
        if (index >= N) {
          this.twist();
          index = 0;
        }
        v = (block[index++] & mask) >>> 0;
      } while (v > range);
      out[i] = low + v;
    }
    this.index = index;
  }

  /**
   * How often each of 0..high-1 comes up in `randint(0, high, size)`: the sampling of
   * `choice(x, size, replace=True)` without materialising the indices.
   */
  randintCounts(high: number, size: number): Uint32Array {
    const counts = new Uint32Array(high);
    const chunk = new Uint32Array(Math.max(1, Math.min(size, 1 << 16)));
    for (let done = 0; done < size; done += chunk.length) {
      const part = size - done < chunk.length ? chunk.subarray(0, size - done) : chunk;
      this.randintInto(0, high, part);
      for (let i = 0; i < part.length; i++) counts[part[i]]++;
    }
    return counts;
  }

  randint(low: number, high: number, size: number): Float64Array {
    const out = new Float64Array(size);
    this.randintInto(low, high, out);
    return out;
  }

  /** Uniform integer in [0, max] (numpy's legacy masked rejection, as `randint(0, max + 1)`). */
  interval(max: number): number {
    const one = new Float64Array(1);
    this.randintInto(0, max + 1, one);
    return one[0];
  }

  /** In-place Fisher–Yates shuffle in numpy's legacy `RandomState.shuffle` order. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.interval(i);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** `permutation(n)`: a shuffled [0, n). */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** `choice(n, size, replace=False)`: the first `size` entries of a permutation, as numpy's legacy code does. */
  choiceWithoutReplacement(n: number, size: number): number[] {
    if (size > n) throw new RangeError(`cannot choose ${size} of ${n} without replacement`);
    return this.permutation(n).slice(0, size);
  }
}
