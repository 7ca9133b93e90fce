// An example custom trainer for `nnunet train DATASET CONFIG FOLD -tr server/training/examples/custom-trainer.ts`:
// 100 epochs of 150 iterations at a lower learning rate, without mirroring, on the plans' U-Net
// with half the feature maps per stage. See server/training/README.md ("Custom trainers").
import { buildNetwork as buildFromArchitecture } from '../../engine/networks/from-plans.js';
import type { NetworkContext, TrainableNetwork } from '../custom-trainer.js';
import type { TrainerOptions } from '../trainer-options.js';

/** The model folder becomes `nnUNetTrainerHalfWidth__<Plans>__<configuration>`. */
export const name = 'nnUNetTrainerHalfWidth';

/** Options are merged over this built-in variant (any name `-tr` accepts). */
export const base = 'nnUNetTrainer_100epochs';

/** Overrides of the trainer's hyper-parameters; a function of {batchSize, patchSize} is allowed too. */
export const options: Partial<TrainerOptions> = {
  numIterationsPerEpoch: 150,
  initialLr: 5e-3,
  mirroring: 'none',
};

/** Builds the network the trainer trains and exports (called with deep supervision on, seeded). */
export function buildNetwork(ctx: NetworkContext): TrainableNetwork {
  const architecture = structuredClone(ctx.configuration.architecture);
  architecture.arch_kwargs.features_per_stage = architecture.arch_kwargs.features_per_stage.map((f) => Math.max(4, Math.round(f / 2)));
  return buildFromArchitecture(architecture, ctx.inputChannels, ctx.numClasses, { deepSupervision: ctx.deepSupervision, seed: ctx.seed });
}
