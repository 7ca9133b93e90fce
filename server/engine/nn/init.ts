// Weight initialisation in plain TypeScript, so a network can be built without libtorch:
// kaiming_normal_ as nnU-Net's InitWeights_He(1e-2) calls it (fan_in mode, leaky_relu gain),
// drawn from a seeded generator so a given seed always gives the same network.
import type { Parameter } from './parameter.js';

/** A seeded source of standard normal samples (xoshiro128** + Box–Muller). */
export class NormalRng {
  #s: Uint32Array;
  #spare: number | null = null;

  constructor(seed: number = Math.floor(Math.random() * 2 ** 32)) {
    // splitmix32 spreads the seed over the four state words (an all-zero state would be stuck).
    this.#s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform on (0, 1). */
  uniform(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return (result + 0.5) / 2 ** 32;
  }

  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.#spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * torch.nn.init.kaiming_normal_(w, a, mode='fan_in', nonlinearity='leaky_relu'):
 * N(0, gain²/fan_in) with gain = sqrt(2 / (1 + a²)) and fan_in = shape[1] · prod(kernel). For a
 * transposed convolution (weight [in, out, k...]) torch's fan_in is out · prod(k), kept here.
 */
export function kaimingNormal(p: Parameter, rng: NormalRng, a = 1e-2): void {
  const receptive = p.shape.slice(2).reduce((x, y) => x * y, 1);
  const fanIn = (p.shape[1] ?? 1) * receptive;
  const std = Math.sqrt(2 / (1 + a * a)) / Math.sqrt(fanIn);
  const values = new Float32Array(p.numel);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal() * std;
  p.setValues(values);
}
