"""Plain-PyTorch baseline for bench/engine-train-step.bench.ts and bench/inference-forward.bench.ts.

nnU-Net v2's PlainConvUNet (dynamic_network_architectures) rewritten in torch.nn with the same
structure and the same trainer step as nnUNetTrainer.train_step (Dice+CE with deep supervision,
clip_grad_norm_ 12, SGD nesterov), so the TypeScript engine is timed against PyTorch itself.
`--mode forward` times the inference forward (no deep supervision, no_grad) instead.
Prints one JSON line: seconds_per_step (median), steps, threads, per-step times, per-phase medians,
parameters; with --serve it instead answers one JSON line per "step" read from stdin.
"""
import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn


def conv_block(cin, cout, kernel, stride):
    # conv -> InstanceNorm3d(affine) -> LeakyReLU(inplace), as ConvDropoutNormReLU with nnU-Net's plans
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride, [(k - 1) // 2 for k in kernel], bias=True),
        nn.InstanceNorm3d(cout, eps=1e-5, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


def stacked(n, cin, cout, kernel, first_stride):
    return nn.Sequential(*[conv_block(cin if i == 0 else cout, cout, kernel, first_stride if i == 0 else 1) for i in range(n)])


class PlainConvUNet(nn.Module):
    def __init__(self, in_channels, num_classes, features, kernels, strides, n_conv=2, n_conv_decoder=2, deep_supervision=True):
        super().__init__()
        self.deep_supervision = deep_supervision
        self.encoder = nn.ModuleList()
        c = in_channels
        for f, k, s in zip(features, kernels, strides):
            self.encoder.append(stacked(n_conv, c, f, k, s))
            c = f
        self.transpconvs, self.stages, self.seg_layers = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        n = len(features)
        for s in range(1, n):
            below, skip, stride = features[n - s], features[n - s - 1], strides[n - s]
            self.transpconvs.append(nn.ConvTranspose3d(below, skip, stride, stride, bias=True))
            self.stages.append(stacked(n_conv_decoder, 2 * skip, skip, kernels[n - s - 1], 1))
            self.seg_layers.append(nn.Conv3d(skip, num_classes, 1, 1, 0, bias=True))

    def forward(self, x):
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        lres, outputs = skips[-1], []
        for s in range(len(self.stages)):
            x = self.stages[s](torch.cat((self.transpconvs[s](lres), skips[-(s + 2)]), 1))
            if self.deep_supervision or s == len(self.stages) - 1:
                outputs.append(self.seg_layers[s](x))
            lres = x
        outputs = outputs[::-1]
        return outputs if self.deep_supervision else outputs[0]


def init_he(module):
    # nnU-Net's InitWeights_He(1e-2)
    if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.kaiming_normal_(module.weight, a=1e-2)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0)


def soft_dice(logits, target, smooth=1e-5):
    # MemoryEfficientSoftDiceLoss: softmax, no background, per-sample (batch_dice off)
    x = torch.softmax(logits, 1)[:, 1:]
    axes = tuple(range(2, logits.ndim))
    with torch.no_grad():
        y = torch.zeros_like(logits).scatter_(1, target.long(), 1)[:, 1:]
        sum_gt = y.sum(axes)
    intersect = (x * y).sum(axes)
    sum_pred = x.sum(axes)
    dc = (2 * intersect + smooth) / torch.clip(sum_gt + sum_pred + smooth, 1e-8)
    return -dc.mean()


def dice_ce(logits, target):
    return nn.functional.cross_entropy(logits, target[:, 0].long()) + soft_dice(logits, target)


def ds_weights(n):
    w = [1 / 2**i for i in range(n)]
    w[-1] = 0
    total = sum(w)
    return [v / total for v in w]


PHASES = ('forward', 'loss', 'backward', 'clip', 'optimiser')


def make_step(a):
    """Builds the network and data; returns (one-step function -> {wall, cpu, phases}, parameter count)."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    features = [int(v) for v in a.features.split(',')]
    patch = [int(v) for v in a.patch.split(',')]
    n = len(features)
    kernels = json.loads(a.kernels) if a.kernels else [[3, 3, 3]] * n
    strides = json.loads(a.strides) if a.strides else [[1, 1, 1]] + [[2, 2, 2]] * (n - 1)
    train = a.mode == 'train'
    net = PlainConvUNet(a.in_channels, a.classes, features, kernels, strides, deep_supervision=train)
    net.apply(init_he)
    params = list(net.parameters())
    x = torch.randn(a.batch, a.in_channels, *patch)

    def timed(body):
        # CPU seconds of all threads beside wall time: far less sensitive to other load on a shared machine
        c0, stamps = time.process_time(), [time.perf_counter()]
        body(lambda: stamps.append(time.perf_counter()))
        stamps.append(time.perf_counter())
        phases = {k: stamps[i + 1] - stamps[i] for i, k in enumerate(PHASES[:len(stamps) - 1])}
        return {'wall': stamps[-1] - stamps[0], 'cpu': time.process_time() - c0, 'phases': phases}

    if not train:
        net.eval()

        def forward(_mark):
            with torch.no_grad():
                net(x)
        return (lambda: timed(forward)), sum(q.numel() for q in params)

    # Deep-supervision targets: the label map at every decoder scale (nearest, as nnU-Net's
    # DownsampleSegForDSTransform), built once: data loading is not part of the step.
    seg = torch.randint(0, a.classes, (a.batch, 1, *patch)).float()
    targets, scale = [], [1, 1, 1]
    for s in strides[:-1]:
        scale = [c * v for c, v in zip(scale, s)]
        targets.append(seg[:, :, ::scale[0], ::scale[1], ::scale[2]].contiguous())
    weights = ds_weights(len(targets))
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5)
    net.train()

    def train_step(mark):
        # nnUNetTrainer.train_step on CPU (no autocast, no grad scaler)
        opt.zero_grad(set_to_none=True)
        outputs = net(x)
        mark()
        loss = sum(w * dice_ce(o, t) for w, o, t in zip(weights, outputs, targets) if w != 0)
        mark()
        loss.backward()
        mark()
        torch.nn.utils.clip_grad_norm_(params, 12)
        mark()
        opt.step()
        loss.item()
    return (lambda: timed(train_step)), sum(q.numel() for q in params)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--mode', choices=['train', 'forward'], default='train')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--iterations', type=int, default=5)
    p.add_argument('--patch', default='40,56,40')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--features', default='32,64,128,256')
    p.add_argument('--kernels', default=None, help='JSON per-stage kernel sizes (default 3x3x3)')
    p.add_argument('--strides', default=None, help='JSON per-stage strides (default [1,1,1] then [2,2,2])')
    p.add_argument('--in-channels', type=int, default=1)
    p.add_argument('--classes', type=int, default=3)
    p.add_argument('--serve', action='store_true',
                   help='after warm-up, run one step per "step" line on stdin and answer one JSON line each, '
                        'so a caller can alternate steps with its own')
    a = p.parse_args()

    step, parameters = make_step(a)
    for _ in range(a.warmup):
        step()
    info = {'mode': a.mode, 'threads': torch.get_num_threads(), 'parameters': parameters, 'torch': torch.__version__}
    if a.serve:
        print(json.dumps({'ready': True, **info}), flush=True)
        for line in sys.stdin:
            if line.strip() != 'step':
                break
            print(json.dumps(step()), flush=True)
        return
    steps = [step() for _ in range(a.iterations)]
    print(json.dumps({**info, 'seconds_per_step': statistics.median(s['wall'] for s in steps), 'steps': len(steps),
                      'times': [s['wall'] for s in steps], 'cpu_times': [s['cpu'] for s in steps],
                      'phases': {k: statistics.median(s['phases'][k] for s in steps) for k in steps[0]['phases']}}))


if __name__ == '__main__':
    main()
