// nnU-Net's GPU memory proxy: the number of output activations of every convolution of the network
// for one patch (dynamic_network_architectures' compute_conv_feature_map_size, REFERENCE §3.4 step D),
// for PlainConvUNet and ResidualEncoderUNet (BasicBlockD) with the UNetDecoder. Sizes shrink by floor
// division at each stride, as in the library.

export interface NetworkShape {
  kind: 'PlainConvUNet' | 'ResidualEncoderUNet';
  featuresPerStage: readonly number[];
  strides: readonly (readonly number[])[];
  /** Convs per encoder stage (PlainConvUNet) or residual blocks per stage (ResidualEncoderUNet). */
  encoderDepth: readonly number[];
  decoderConvs: readonly number[];
  numClasses: number;
  /** nnU-Net plans with deep supervision off; on adds a segmentation output per decoder stage. */
  deepSupervision?: boolean;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
const down = (size: readonly number[], stride: readonly number[]) => size.map((s, i) => Math.floor(s / stride[i]));

/** Output activations of all convolutions for one input patch (channels excluded from the patch). */
export function convFeatureMapSize(net: NetworkShape, patchSize: readonly number[]): number {
  const n = net.featuresPerStage.length;
  const C = net.featuresPerStage;
  let total = 0;
  // Encoder: stage s runs at the resolution after its own stride.
  let input = [...patchSize];
  let inChannels = C[0];
  const resolutions: number[][] = [];
  if (net.kind === 'ResidualEncoderUNet') total += C[0] * prod(input); // the stem conv
  for (let s = 0; s < n; s++) {
    const out = down(input, net.strides[s]);
    const v = prod(out);
    if (net.kind === 'PlainConvUNet') {
      total += net.encoderDepth[s] * C[s] * v;
    } else {
      // Two convs per BasicBlockD; the first block adds a 1x1 projection when it strides or widens.
      const changes = inChannels !== C[s] || out.some((x, i) => x !== input[i]);
      total += 2 * net.encoderDepth[s] * C[s] * v + (changes ? C[s] * v : 0);
    }
    resolutions.push(out);
    inChannels = C[s];
    input = out;
  }
  // Decoder, deepest first: transposed conv + convs at each skip's resolution, seg head(s).
  for (let d = 0; d < n - 1; d++) {
    const s = n - 2 - d;
    const v = prod(resolutions[s]);
    total += net.decoderConvs[d] * C[s] * v + C[s] * v;
    if (net.deepSupervision || d === n - 2) total += net.numClasses * v;
  }
  return total;
}
