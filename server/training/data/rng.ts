// The host-side random decisions of the data pipeline (which case, which voxel, whether a transform
// fires, its parameters). Seeded MT19937 with numpy's 53-bit doubles, so a seeded run repeats; the
// stream is not meant to equal nnU-Net's (its workers draw from an unseeded global RNG).
import { RandomState } from '../../util/mt19937.js';

export class DecisionRng {
  readonly #rs: RandomState;

  constructor(seed: number) {
    this.#rs = new RandomState(seed >>> 0);
  }

  /** Uniform in [0, 1) with 53 random bits (numpy's random_sample). */
  random(): number {
    const a = this.#rs.nextUint32() >>> 5;
    const b = this.#rs.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** Uniform integer in [lo, hi] (both ends included). */
  intInclusive(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`empty integer range [${lo}, ${hi}]`);
    return lo + this.#rs.interval(hi - lo);
  }

  /** Uniform index into a list of n items. */
  index(n: number): number {
    return this.intInclusive(0, n - 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.random() < p;
  }

  /** In-place shuffle. */
  shuffle<T>(items: T[]): T[] {
    return this.#rs.shuffle(items);
  }

  /**
   * batchgenerators' BGContrast sampling for a (lo, hi) range around 1: with probability 0.5 (and
   * lo < 1) a factor below 1, else one above — so darkening and brightening are equally likely
   * whatever the range's asymmetry.
   */
  bgContrast(lo: number, hi: number): number {
    if (this.random() < 0.5 && lo < 1) return this.uniform(lo, 1);
    return this.uniform(Math.max(lo, 1), hi);
  }
}
