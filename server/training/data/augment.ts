// nnU-Net v2's per-sample training and validation transforms (get_training_transforms /
// get_validation_transforms, REFERENCE §5.3) in their order and with their probabilities, on the
// training device. Decisions and parameters come from the seeded host RNG, voxel noise from
// libtorch's generator, so a seeded run repeats. Cascade morphology: see targets.ts for the kernel.
import { tidy, type Tensor } from '../../engine/torch.js';
import { gamma, gaussianBlur, gaussianNoise, contrast, multiplicativeBrightness, simulateLowResolution } from './intensity.js';
import type { DecisionRng } from './rng.js';
import { affineMatrix, mirror, spatialTransform } from './spatial.js';
import {
  BINARY_OPERATORS,
  appendPreviousStageOneHot,
  applyBinaryOperators,
  deepSupervisionTargets,
  maskImage,
  removeNegativeLabel,
  removeRandomComponents,
  segToRegions,
  type BinaryOperatorStep,
} from './targets.js';

export interface SampleConfig {
  /** Final patch (2 entries for 2D configurations). */
  patchSize: number[];
  dummy2d: boolean;
  /** Rotation range in radians, the same for every axis. */
  rotationRange: readonly [number, number];
  mirrorAxes: readonly number[];
  maskedChannels: readonly number[];
  /** Highest label value a segmentation can hold (ignore label included), for the label resampling. */
  maxLabel: number;
  /** Cascade: one-hot channels of these labels are made from the previous-stage segmentation. */
  cascadeLabels: readonly number[] | null;
  /** Region datasets: the labels of each target channel (the ignore label last, if any); null = label map. */
  regions: readonly (readonly number[])[] | null;
  /** Deep-supervision target shapes, the full patch first (a single entry without deep supervision). */
  targetShapes: readonly (readonly number[])[];
}

/** nnU-Net's transform probabilities and ranges (nnUNetTrainer.get_training_transforms). */
export const DA = {
  pRotation: 0.2,
  pScaling: 0.2,
  scaling: [0.7, 1.4] as const,
  pNoise: 0.1,
  noiseSigma: [0, 0.1] as const,
  pBlur: 0.2,
  pBlurPerChannel: 0.5,
  blurSigma: [0.5, 1.0] as const,
  pBrightness: 0.15,
  brightness: [0.75, 1.25] as const,
  pContrast: 0.15,
  contrast: [0.75, 1.25] as const,
  pLowRes: 0.25,
  pLowResPerChannel: 0.5,
  lowResZoom: [0.5, 1] as const,
  pGammaInverted: 0.1,
  pGamma: 0.3,
  gamma: [0.7, 1.5] as const,
  pMirrorPerAxis: 0.5,
  pBinaryOperator: 0.4,
  pBinaryOperatorPerLabel: 0.5,
  strelRadius: [1, 8] as const,
  pRemoveComponent: 0.2,
  pRemoveComponentPerLabel: 0.5,
  removeComponentMaxFraction: 0.15,
} as const;

/** The label-side tail shared by training and validation: −1 → 0, cascade input, regions, DS targets. */
function finish(img: Tensor, seg: Tensor, cfg: SampleConfig, rng: DecisionRng | null): { img: Tensor; targets: Tensor[] } {
  seg = removeNegativeLabel(seg);
  if (cfg.cascadeLabels !== null) {
    ({ img, seg } = appendPreviousStageOneHot(img, seg, cfg.cascadeLabels));
    if (rng !== null) {
      const nImage = img.shape[0] - cfg.cascadeLabels.length;
      const oneHot = cfg.cascadeLabels.map((_, i) => nImage + i);
      if (rng.chance(DA.pBinaryOperator)) {
        const order = rng.shuffle([...oneHot]);
        const steps: BinaryOperatorStep[] = order
          .filter(() => rng.chance(DA.pBinaryOperatorPerLabel))
          .map((channel) => ({ channel, op: BINARY_OPERATORS[rng.index(4)], radius: rng.uniform(...DA.strelRadius) }));
        img = applyBinaryOperators(img, oneHot, steps);
      }
      if (rng.chance(DA.pRemoveComponent)) {
        const chosen = rng.shuffle([...oneHot]).filter(() => rng.chance(DA.pRemoveComponentPerLabel));
        img = removeRandomComponents(img, chosen, (n) => rng.index(n), DA.removeComponentMaxFraction);
      }
    }
  }
  const target = cfg.regions !== null ? segToRegions(seg, cfg.regions) : seg.narrow(0, 0, 1).to('float32');
  return { img, targets: deepSupervisionTargets(target, cfg.targetShapes) };
}

/** Validation transforms: no spatial or intensity augmentation, the loaded patch is the final patch. */
export function validationSample(img: Tensor, seg: Tensor, cfg: SampleConfig): { img: Tensor; targets: Tensor[] } {
  return tidy(() => finish(img, seg, cfg, null));
}

/** The spatial step, with dummy-2D folding of axis 0 into the channels around it. */
function spatialStep(img: Tensor, seg: Tensor, cfg: SampleConfig, rng: DecisionRng): { img: Tensor; seg: Tensor } {
  const nd = cfg.dummy2d ? 2 : cfg.patchSize.length;
  const doRotation = rng.chance(DA.pRotation);
  const doScaling = rng.chance(DA.pScaling);
  const angles = doRotation ? Array.from({ length: nd === 3 ? 3 : 1 }, () => rng.uniform(...cfg.rotationRange)) : null;
  const scale = doScaling ? rng.uniform(...DA.scaling) : 1;
  const A = angles !== null || doScaling ? affineMatrix(angles ?? new Array<number>(nd === 3 ? 3 : 1).fill(0), scale) : null;
  if (!cfg.dummy2d) return spatialTransform(img, seg, cfg.patchSize, A, cfg.maxLabel);
  const [c, x, ...inPlane] = img.shape;
  const cs = seg.shape[0];
  const out = spatialTransform(img.reshape([c * x, ...inPlane]), seg.reshape([cs * x, ...inPlane]), cfg.patchSize.slice(1), A, cfg.maxLabel);
  return { img: out.img.reshape([c, x, ...cfg.patchSize.slice(1)]), seg: out.seg.reshape([cs, x, ...cfg.patchSize.slice(1)]) };
}

/**
 * The training transforms of one sample: img (C, ...loaded patch) float32, seg (Cs, ...loaded
 * patch) int16 with −1 outside, both on the device → image (C', ...patch) and the targets.
 */
export function trainingSample(img: Tensor, seg: Tensor, cfg: SampleConfig, rng: DecisionRng): { img: Tensor; targets: Tensor[] } {
  return tidy(() => {
    ({ img, seg } = spatialStep(img, seg, cfg, rng));
    const channels = img.shape[0];
    const all = Array.from({ length: channels }, (_, i) => i);

    if (rng.chance(DA.pNoise)) img = gaussianNoise(img, rng.uniform(...DA.noiseSigma));
    if (rng.chance(DA.pBlur)) {
      const chosen = all.filter(() => rng.chance(DA.pBlurPerChannel));
      const sigmas = chosen.map(() => cfg.patchSize.map(() => rng.uniform(...DA.blurSigma)));
      img = gaussianBlur(img, chosen, sigmas);
    }
    if (rng.chance(DA.pBrightness)) img = multiplicativeBrightness(img, all.map(() => rng.bgContrast(...DA.brightness)));
    if (rng.chance(DA.pContrast)) img = contrast(img, all.map(() => rng.bgContrast(...DA.contrast)));
    if (rng.chance(DA.pLowRes)) {
      const chosen = all.filter(() => rng.chance(DA.pLowResPerChannel));
      const zooms = chosen.map(() => rng.uniform(...DA.lowResZoom));
      img = simulateLowResolution(img, chosen, zooms, cfg.dummy2d ? [0] : []);
    }
    if (rng.chance(DA.pGammaInverted)) img = gamma(img, all.map(() => rng.bgContrast(...DA.gamma)), true);
    if (rng.chance(DA.pGamma)) img = gamma(img, all.map(() => rng.bgContrast(...DA.gamma)), false);

    const flips = cfg.mirrorAxes.filter(() => rng.chance(DA.pMirrorPerAxis));
    if (flips.length > 0) {
      img = mirror(img, flips);
      seg = mirror(seg, flips);
    }
    if (cfg.maskedChannels.length > 0) img = maskImage(img, seg, cfg.maskedChannels);
    return finish(img, seg, cfg, rng);
  });
}
