// One training iteration and one online-validation iteration, as nnUNetTrainer.train_step and
// validation_step (REFERENCE §5.1, §5.6): forward (autocast on CUDA), deep-supervised loss,
// backward, clip the global gradient norm at 12 (after unscaling), SGD step; validation without
// gradients, returning its loss and the hard TP/FP/FN of the full-resolution output.
import { autocast, clipGradNorm, noGrad, tidy, type GradScaler, type SGD, type Tensor } from '../engine/torch.js';
import type { DeepSupervisionWrapper } from '../engine/loss/index.js';
import type { TrainingBatch } from './data/types.js';
import type { TrainableNetwork } from './custom-trainer.js';
import { hardCounts, type CountOptions, type HardCounts } from './pseudo-dice.js';

export interface StepContext {
  network: TrainableNetwork;
  params: Tensor[];
  loss: DeepSupervisionWrapper;
  optimizer: SGD;
  scaler: GradScaler | null;
  gradClipNorm: number;
  /** Mixed precision (CUDA only, as nnU-Net). */
  amp: boolean;
}

function forwardAndLoss(ctx: StepContext, batch: TrainingBatch): { outputs: Tensor[]; loss: Tensor } {
  const run = () => {
    const out = ctx.network.forward(batch.data);
    const outputs = Array.isArray(out) ? out : [out];
    // Without deep supervision the pipeline still hands one target per scale; the first is full resolution.
    const targets = outputs.length === 1 ? batch.targets.slice(0, 1) : batch.targets;
    return { outputs, loss: ctx.loss.forward(outputs, targets) };
  };
  return ctx.amp ? autocast(run, { device: 'cuda' }) : run();
}

function disposeBatch(batch: TrainingBatch): void {
  batch.data.dispose();
  for (const t of batch.targets) t.dispose();
}

/** One optimiser step on `batch` (whose tensors are released); returns the loss value. */
export function trainStep(ctx: StepContext, batch: TrainingBatch): number {
  try {
    return tidy(() => {
      ctx.optimizer.zeroGrad(true);
      const { loss } = forwardAndLoss(ctx, batch);
      if (ctx.scaler) {
        ctx.scaler.scaleLoss(loss).backward();
        ctx.scaler.unscale(ctx.params);
        clipGradNorm(ctx.params, ctx.gradClipNorm);
        ctx.scaler.step(ctx.optimizer, ctx.params);
        ctx.scaler.update();
      } else {
        loss.backward();
        clipGradNorm(ctx.params, ctx.gradClipNorm);
        ctx.optimizer.step();
      }
      return loss.item();
    });
  } finally {
    disposeBatch(batch);
  }
}

export interface ValidationStepResult {
  loss: number;
  counts: HardCounts;
}

/** Loss and hard counts of one validation batch (no gradients; `batch` is released). */
export function validationStep(ctx: StepContext, batch: TrainingBatch, countOptions: CountOptions): ValidationStepResult {
  try {
    return noGrad(() =>
      tidy(() => {
        const { outputs, loss } = forwardAndLoss(ctx, batch);
        return { loss: loss.item(), counts: hardCounts(outputs[0], batch.targets[0], countOptions) };
      }),
    );
  } finally {
    disposeBatch(batch);
  }
}
