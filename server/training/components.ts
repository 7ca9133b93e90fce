// The trainable pieces of a fold, as nnUNetTrainer.initialize builds them: the network from the
// plans (or a custom builder), the loss of the trainer variant wrapped for deep supervision
// (REFERENCE §5.4–5.5), SGD with Nesterov momentum, and a GradScaler on CUDA only.
import { GradScaler, SGD, type Device, type Tensor } from '../engine/torch.js';
import { DeepSupervisionWrapper, DiceBCELoss, DiceCELoss, deepSupervisionWeights, robustCrossEntropy, softDiceLoss, type Loss } from '../engine/loss/index.js';
import { buildNetworkFromPlans } from '../engine/networks/from-plans.js';
import type { LabelManager } from '../dataset/labels.js';
import type { Configuration, Plans } from '../planning/plans.js';
import type { NetworkBuilder, TrainableNetwork } from './custom-trainer.js';
import type { TrainerOptions } from './trainer-options.js';

export interface LossBundle {
  loss: DeepSupervisionWrapper;
  /** nnU-Net's repr of the loss, for debug.json. */
  description: string;
}

/** Input channels: image channels, plus one per foreground label for a cascade stage. */
export function numInputChannels(imageChannels: number, configuration: Configuration, labels: LabelManager): number {
  return imageChannels + (configuration.previous_stage ? labels.foregroundLabels.length : 0);
}

/** Number of deep-supervision outputs the plans' network produces (stages − 1). */
export function deepSupervisionOutputs(configuration: Configuration): number {
  return Math.max(1, configuration.architecture.arch_kwargs.strides.length - 1);
}

/** The trainer's loss (nnUNetTrainer._build_loss and the loss variants). */
export function buildLoss(o: TrainerOptions, labels: LabelManager, batchDice: boolean, outputs: number): LossBundle {
  let inner: Loss;
  let description: string;
  const ignoreLabel = labels.ignoreLabel ?? null;
  if (o.loss === 'ce') {
    if (labels.hasRegions) throw new Error('the cross-entropy-only trainer does not support region-based datasets (as nnUNetTrainerCELoss)');
    inner = { forward: (out, target) => robustCrossEntropy(out, target, { ignoreIndex: ignoreLabel ?? -100 }) };
    description = 'RobustCrossEntropyLoss()';
  } else if (o.loss === 'dice') {
    const nonlin = labels.hasRegions ? 'sigmoid' : 'softmax';
    inner = { forward: (out, target) => softDiceLoss(out, target, { nonlin, batchDice, doBg: labels.hasRegions, smooth: o.diceSmooth }) };
    description = 'MemoryEfficientSoftDiceLoss()';
  } else if (labels.hasRegions) {
    inner = new DiceBCELoss({ batchDice, useIgnoreLabel: labels.hasIgnoreLabel, smooth: o.diceSmooth });
    description = 'DC_and_BCE_loss(\n    (ce): BCEWithLogitsLoss()\n    (dc): MemoryEfficientSoftDiceLoss()\n  )';
  } else {
    inner = new DiceCELoss({ batchDice, ignoreLabel, smooth: o.diceSmooth });
    description = 'DC_and_CE_loss(\n    (ce): RobustCrossEntropyLoss()\n    (dc): MemoryEfficientSoftDiceLoss()\n  )';
  }
  const n = o.enableDeepSupervision ? outputs : 1;
  return { loss: new DeepSupervisionWrapper(inner, deepSupervisionWeights(n)), description: `DeepSupervisionWrapper(\n  (loss): ${description}\n)` };
}

export interface NetworkRequest {
  plans: Plans;
  configurationName: string;
  configuration: Configuration;
  inputChannels: number;
  numClasses: number;
  deepSupervision: boolean;
  seed?: number;
  builder: NetworkBuilder | null;
}

/** The network, He-initialised (plans) or from the custom builder. */
export function buildTrainingNetwork(r: NetworkRequest): TrainableNetwork {
  if (r.builder) {
    const network = r.builder({
      plans: r.plans,
      configurationName: r.configurationName,
      configuration: r.configuration,
      inputChannels: r.inputChannels,
      numClasses: r.numClasses,
      deepSupervision: r.deepSupervision,
      seed: r.seed,
    });
    if (!network || typeof network.forward !== 'function' || typeof network.toOnnx !== 'function' || typeof network.parameters !== 'function') {
      throw new Error('buildNetwork must return a Module with forward(x), toOnnx(g, input) and parameters() (see server/training/README.md)');
    }
    network.deepSupervision = r.deepSupervision;
    return network;
  }
  return buildNetworkFromPlans(r.plans, r.configurationName, r.inputChannels, r.numClasses, { deepSupervision: r.deepSupervision, seed: r.seed });
}

export interface Optimisation {
  params: Tensor[];
  paramNames: string[];
  optimizer: SGD;
  scaler: GradScaler | null;
}

/** Moves the network to `device` and builds SGD over all its parameters (weight decay on all, as nnU-Net). */
export function prepareOptimisation(network: TrainableNetwork, o: TrainerOptions, device: Device): Optimisation {
  network.materialize(device);
  const named = network.namedParameters();
  const params = named.map(([, p]) => p.tensor);
  const optimizer = new SGD(params, { lr: o.initialLr, momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov });
  const scaler = device.startsWith('cuda') ? new GradScaler() : null;
  return { params, paramNames: named.map(([k]) => k), optimizer, scaler };
}
