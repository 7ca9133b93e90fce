// Network topology from spacing and patch size: nnU-Net v2's get_pool_and_conv_props
// (experiment_planners/network_topology.py, REFERENCE §3.4 step B). Pools an axis while its feature
// map is >= 8 and its spacing is within 2x of the finest; a lone poolable axis needs >= 12 voxels.
// Kernels turn to 3 (for good) once an axis is within 2x of the finest spacing.

export interface Topology {
  /** Pooling operations per axis. */
  numPoolPerAxis: number[];
  /** One stride per stage; stage 0 is all ones. */
  strides: number[][];
  /** One conv kernel per stage; the bottleneck is all threes. */
  kernelSizes: number[][];
  /** The patch padded up to a multiple of `mustBeDivisibleBy`. */
  patchSize: number[];
  /** 2 ** numPoolPerAxis. */
  mustBeDivisibleBy: number[];
}

/** Rounds each entry up to a multiple of its divisor (nnU-Net's pad_shape; int() of the result). */
export function padShape(shape: readonly number[], divisibleBy: readonly number[]): number[] {
  return shape.map((s, i) => {
    const d = divisibleBy[i];
    const rem = s % d;
    return Math.trunc(rem === 0 ? s : s + d - rem);
  });
}

export function getPoolAndConvProps(spacing: readonly number[], patchSize: readonly number[], minFeatureMapSize = 4, maxNumPool = 999999): Topology {
  const dim = spacing.length;
  const currentSpacing = [...spacing];
  const currentSize = [...patchSize];
  const strides: number[][] = [new Array<number>(dim).fill(1)];
  const kernelSizes: number[][] = [];
  const numPoolPerAxis = new Array<number>(dim).fill(0);
  const kernel = new Array<number>(dim).fill(1);
  const axes = [...Array(dim).keys()];

  for (;;) {
    let valid = axes.filter((i) => currentSize[i] >= 2 * minFeatureMapSize);
    if (valid.length < 1) break;
    // The spacings of the axes still large enough, indexed by position in that list (see below).
    const spacingsOfAxes = valid.map((i) => currentSpacing[i]);
    const minSpacingOfValid = Math.min(...spacingsOfAxes);
    valid = valid.filter((i) => currentSpacing[i] / minSpacingOfValid < 2);
    valid = valid.filter((i) => numPoolPerAxis[i] < maxNumPool);
    if (valid.length === 1 && !(currentSize[valid[0]] >= 3 * minFeatureMapSize)) break;
    if (valid.length < 1) break;

    const minSpacing = Math.min(...currentSpacing);
    for (let d = 0; d < dim; d++) {
      if (kernel[d] === 3) continue;
      // nnU-Net indexes the list of size-valid spacings with the axis number d. When an axis was
      // dropped for size this reads another axis' spacing; we keep that for identical plans. Where
      // nnU-Net would index past the list (an IndexError there), the axis' own spacing is used.
      const s = d < spacingsOfAxes.length ? spacingsOfAxes[d] : currentSpacing[d];
      if (s / minSpacing < 2) kernel[d] = 3;
    }

    const stride = new Array<number>(dim).fill(1);
    for (const v of valid) {
      stride[v] = 2;
      numPoolPerAxis[v] += 1;
      currentSpacing[v] *= 2;
      currentSize[v] = Math.ceil(currentSize[v] / 2);
    }
    strides.push(stride);
    kernelSizes.push([...kernel]);
  }

  const mustBeDivisibleBy = numPoolPerAxis.map((n) => 2 ** n);
  kernelSizes.push(new Array<number>(dim).fill(3));
  return { numPoolPerAxis, strides, kernelSizes, patchSize: padShape(patchSize, mustBeDivisibleBy), mustBeDivisibleBy };
}
