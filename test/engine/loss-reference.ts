// Test support for engine/loss: seeded random cases and nnU-Net's loss formulas re-written in a few
// lines of PyTorch (nnunetv2 itself is not installed), run through Debian's Python.
import { spawnSync } from 'node:child_process';
import { DeepSupervisionWrapper, DiceBCELoss, DiceCELoss, deepSupervisionWeights, softDiceLoss, type Loss } from '../../server/engine/loss/index.js';
import type { Tensor } from '../../server/engine/torch.js';
import { DEBIAN_PYTHON } from '../helpers.js';

export interface ArraySpec {
  shape: number[];
  data: number[];
  dtype?: string;
}
export interface CaseSpec {
  name: string;
  kind: 'dice_ce' | 'dice_bce' | 'dice';
  params: Record<string, unknown>;
  outputs: ArraySpec[];
  targets: ArraySpec[];
  dsWeights: number[] | null;
}
export interface Case {
  spec: CaseSpec;
  run: (outputs: Tensor[], targets: Tensor[]) => Tensor;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);
export const randomLogits = (r: () => number, s: number[]): Float32Array => Float32Array.from({ length: numel(s) }, () => (r() - 0.5) * 6);
export const randomLabels = (r: () => number, s: number[], n: number): Float32Array => Float32Array.from({ length: numel(s) }, () => Math.floor(r() * n));

export function buildCases(): Case[] {
  const r = mulberry32(42);
  const arr = (shape: number[], data: Float32Array, dtype = 'float32'): ArraySpec => ({ shape, data: Array.from(data), dtype });
  const logits = (shape: number[]) => arr(shape, randomLogits(r, shape));
  const labels = (shape: number[], n: number) => arr(shape, randomLabels(r, shape, n));
  const cases: Case[] = [];
  const single = (loss: Loss) => (o: Tensor[], t: Tensor[]) => loss.forward(o[0], t[0]);

  for (const batchDice of [false, true]) {
    cases.push({
      spec: { name: `dice_ce 3d batchDice=${batchDice}`, kind: 'dice_ce', params: { batch_dice: batchDice, ignore_label: null }, outputs: [logits([2, 3, 3, 4, 5])], targets: [labels([2, 1, 3, 4, 5], 3)], dsWeights: null },
      run: single(new DiceCELoss({ batchDice })),
    });
  }
  // ignore label 3 with 3 classes; in the second case sample 1 is entirely ignored
  const ignoreTargets = labels([2, 1, 6, 5], 4);
  const halfIgnored = arr([2, 1, 6, 5], Float32Array.from(ignoreTargets.data, (v, i) => (i >= 30 ? 3 : v)));
  for (const [name, t] of [['ignore', ignoreTargets], ['ignore, one sample unannotated', halfIgnored]] as const) {
    for (const batchDice of [false, true]) {
      cases.push({
        spec: { name: `dice_ce 2d ${name} batchDice=${batchDice}`, kind: 'dice_ce', params: { batch_dice: batchDice, ignore_label: 3 }, outputs: [logits([2, 3, 6, 5])], targets: [t], dsWeights: null },
        run: single(new DiceCELoss({ batchDice, ignoreLabel: 3 })),
      });
    }
  }
  cases.push({
    spec: { name: 'dice_bce regions', kind: 'dice_bce', params: { batch_dice: false, use_ignore_label: false }, outputs: [logits([2, 2, 4, 4])], targets: [labels([2, 2, 4, 4], 2)], dsWeights: null },
    run: single(new DiceBCELoss({ batchDice: false })),
  });
  const regionTarget = labels([2, 3, 4, 4], 2);
  regionTarget.dtype = 'bool';
  cases.push({
    spec: { name: 'dice_bce regions with ignore channel', kind: 'dice_bce', params: { batch_dice: true, use_ignore_label: true }, outputs: [logits([2, 2, 4, 4])], targets: [regionTarget], dsWeights: null },
    run: single(new DiceBCELoss({ batchDice: true, useIgnoreLabel: true })),
  });
  cases.push({
    spec: { name: 'soft dice with background, sigmoid, one-hot float target', kind: 'dice', params: { batch_dice: false, do_bg: true, nonlin: 'sigmoid' }, outputs: [logits([2, 2, 3, 3])], targets: [labels([2, 2, 3, 3], 2)], dsWeights: null },
    run: (o, t) => softDiceLoss(o[0], t[0], { nonlin: 'sigmoid', doBg: true }),
  });
  const weights = deepSupervisionWeights(3);
  const dsShapes = [[2, 3, 8, 6], [2, 3, 4, 3], [2, 3, 2, 2]];
  cases.push({
    spec: {
      name: 'deep supervision dice_ce with ignore',
      kind: 'dice_ce',
      params: { batch_dice: true, ignore_label: 3 },
      outputs: dsShapes.map((s) => logits(s)),
      targets: dsShapes.map((s) => labels([2, 1, ...s.slice(2)], 4)),
      dsWeights: weights,
    },
    run: (o, t) => new DeepSupervisionWrapper(new DiceCELoss({ batchDice: true, ignoreLabel: 3 }), weights).forward(o, t),
  });
  return cases;
}

// nnU-Net's MemoryEfficientSoftDiceLoss, DC_and_CE_loss, DC_and_BCE_loss and DeepSupervisionWrapper,
// re-written from their definitions (nnunetv2 is not installed here).
const REFERENCE_SCRIPT = String.raw`
import json, sys, torch
torch.set_grad_enabled(True)

def soft_dice(x, y, nonlin, batch_dice, do_bg, smooth=1e-5, loss_mask=None):
    shp_x, shp_y = x.shape, y.shape
    x = torch.softmax(x, 1) if nonlin == 'softmax' else torch.sigmoid(x)
    if not do_bg:
        x = x[:, 1:]
    axes = list(range(2, len(shp_x)))
    with torch.no_grad():
        if len(shp_x) != len(shp_y):
            y = y.view((shp_y[0], 1, *shp_y[1:]))
        if tuple(y.shape) == tuple(shp_x):
            y_onehot = y
        else:
            y_onehot = torch.zeros(shp_x, dtype=torch.bool)
            y_onehot.scatter_(1, y.long(), 1)
        if not do_bg:
            y_onehot = y_onehot[:, 1:]
        sum_gt = y_onehot.sum(axes) if loss_mask is None else (y_onehot * loss_mask).sum(axes)
    intersect = (x * y_onehot).sum(axes) if loss_mask is None else (x * y_onehot * loss_mask).sum(axes)
    sum_pred = x.sum(axes) if loss_mask is None else (x * loss_mask).sum(axes)
    if batch_dice:
        intersect, sum_pred, sum_gt = intersect.sum(0), sum_pred.sum(0), sum_gt.sum(0)
    dc = (2 * intersect + smooth) / torch.clip(sum_gt + sum_pred + smooth, 1e-8)
    return -dc.mean()

def dice_ce(x, t, p):
    ignore = p['ignore_label']
    if ignore is not None:
        mask = t != ignore
        t_dice = torch.where(mask, t, torch.zeros_like(t))
        num_fg = mask.sum()
    else:
        mask, t_dice = None, t
    dc = soft_dice(x, t_dice, 'softmax', p['batch_dice'], False, loss_mask=mask)
    ce = 0
    if ignore is None or num_fg > 0:
        ce = torch.nn.functional.cross_entropy(x, t[:, 0].long(), ignore_index=ignore if ignore is not None else -100)
    return ce + dc

def dice_bce(x, t, p):
    if p['use_ignore_label']:
        mask = ~t[:, -1:]
        regions = t[:, :-1]
    else:
        mask, regions = None, t
    dc = soft_dice(x, regions, 'sigmoid', p['batch_dice'], True, loss_mask=mask)
    regions = regions.float()
    if mask is not None:
        bce = torch.nn.functional.binary_cross_entropy_with_logits(x, regions, reduction='none')
        bce = (bce * mask).sum() / torch.clip(mask.sum(), min=1e-8)
    else:
        bce = torch.nn.functional.binary_cross_entropy_with_logits(x, regions)
    return bce + dc

def dice_only(x, t, p):
    return soft_dice(x, t, p['nonlin'], p['batch_dice'], p['do_bg'])

LOSSES = {'dice_ce': dice_ce, 'dice_bce': dice_bce, 'dice': dice_only}
DTYPES = {'float32': torch.float32, 'bool': torch.bool}
results = []
for c in json.load(sys.stdin):
    outs = [torch.tensor(o['data'], dtype=torch.float32).reshape(o['shape']).requires_grad_() for o in c['outputs']]
    tgts = [torch.tensor(t['data'], dtype=torch.float32).reshape(t['shape']).to(DTYPES[t['dtype']]) for t in c['targets']]
    fn = LOSSES[c['kind']]
    w = c['dsWeights'] or [1] * len(outs)
    loss = sum([w[i] * fn(o, t, c['params']) for i, (o, t) in enumerate(zip(outs, tgts)) if w[i] != 0.0])
    loss.backward()
    results.append({'loss': loss.item(), 'grads': [None if o.grad is None else o.grad.flatten().tolist() for o in outs]})
json.dump(results, sys.stdout)
`;

export function runReference(specs: CaseSpec[]): { loss: number; grads: (number[] | null)[] }[] {
  const r = spawnSync(DEBIAN_PYTHON, ['-c', REFERENCE_SCRIPT], { input: JSON.stringify(specs), maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python reference failed: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString());
}
