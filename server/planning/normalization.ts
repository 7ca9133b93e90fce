// Normalization scheme per channel name (nnU-Net v2's map_channel_name_to_normalization, REFERENCE
// §4.2) and the use_mask_for_norm rule of the planner (§3.4 step G): only z-score can normalise
// inside the nonzero mask, and does so when cropping removed more than a quarter of the images.

export type NormalizationScheme =
  | 'CTNormalization'
  | 'NoNormalization'
  | 'ZScoreNormalization'
  | 'RescaleTo01Normalization'
  | 'RGBTo01Normalization';

const BY_CHANNEL_NAME: Record<string, NormalizationScheme> = {
  ct: 'CTNormalization',
  nonorm: 'NoNormalization',
  zscore: 'ZScoreNormalization',
  rescale_to_0_1: 'RescaleTo01Normalization',
  rgb_to_0_1: 'RGBTo01Normalization',
};

/** Schemes that leave voxels outside the mask at zero when normalising with the mask. */
const MASK_CAPABLE = new Set<NormalizationScheme>(['ZScoreNormalization']);

/** The scheme for a channel name, compared case-insensitively; unknown names get z-score. */
export function normalizationSchemeFor(channelName: string): NormalizationScheme {
  // casefold() ≈ toLowerCase() + ß/ſ folding, irrelevant for these ASCII keys.
  return BY_CHANNEL_NAME[channelName.toLowerCase()] ?? 'ZScoreNormalization';
}

export interface NormalizationPlan {
  schemes: NormalizationScheme[];
  useMaskForNorm: boolean[];
}

/**
 * Schemes in channel order, and the mask flag per channel: on for mask-capable schemes when the
 * median relative size after cropping is below 3/4, or when dataset.json asks for it.
 */
export function planNormalization(channelNames: Record<string, string>, medianRelativeSizeAfterCropping: number, forceMask = false): NormalizationPlan {
  const names = Object.keys(channelNames)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => channelNames[k]);
  const schemes = names.map(normalizationSchemeFor);
  const useMask = medianRelativeSizeAfterCropping < 3 / 4 || forceMask;
  return { schemes, useMaskForNorm: schemes.map((s) => useMask && MASK_CAPABLE.has(s)) };
}
