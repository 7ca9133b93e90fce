"""Plain-PyTorch stand-in for nnU-Net v2's predictor, the baseline of bench/predict.bench.ts.

Runs nnUNetPredictor.predict_logits_from_preprocessed_data on already preprocessed arrays: the real
checkpoint's PlainConvUNet rebuilt in torch.nn (nnunetv2 itself is not installed here), nnU-Net's
sliding window (centred zero padding to the patch, step 0.5 tiles, Gaussian sigma = patch/8 scaled to
10 in float16, mirroring over every non-empty subset of the checkpoint's axes with one tile per forward,
float16 accumulators) and the fold loop (load_state_dict per fold, logits summed, divided by the folds).
Departs from nnU-Net only in slicing tiles inline instead of in a producer thread.
Input: float32 .npy files (c, x, y, z) written by the TypeScript benchmark with our preprocessing, so
both sides predict the identical arrays. The fixture model has fold 0 only; for 5 folds the benchmark copies
fold_0 to fold_1..fold_4, so this script loads and runs the same weights five times (the cost of an ensemble).
Prints one JSON line: seconds_per_case (median over repeats), with_tta, folds, per-case wall and CPU times.
"""
import argparse
import itertools
import json
import os
import re
import statistics
import time

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn


class ConvNormAct(nn.Module):
    """ConvDropoutNormReLU without dropout: conv -> InstanceNorm3d(affine) -> LeakyReLU(0.01)."""

    def __init__(self, cin, cout, kernel, stride):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, [(k - 1) // 2 for k in kernel], bias=True)
        self.norm = nn.InstanceNorm3d(cout, eps=1e-5, affine=True)
        self.act = nn.LeakyReLU(0.01, inplace=True)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class StackedConvs(nn.Module):
    def __init__(self, n, cin, cout, kernel, first_stride):
        super().__init__()
        self.convs = nn.Sequential(*[ConvNormAct(cin if i == 0 else cout, cout, kernel, first_stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.convs(x)


class PlainConvUNet(nn.Module):
    """Module names follow dynamic_network_architectures, so checkpoint keys load unchanged
    (encoder.stages.S.0.convs.J.*, decoder.stages.T.convs.J.*, decoder.transpconvs.T.*); only the
    full-resolution seg head exists, as deep supervision is off at inference."""

    def __init__(self, in_channels, num_classes, kw):
        super().__init__()
        f, k, s = kw["features_per_stage"], kw["kernel_sizes"], kw["strides"]
        n = kw["n_stages"]
        self.encoder = nn.Module()
        self.encoder.stages = nn.ModuleList()
        c = in_channels
        for i in range(n):
            self.encoder.stages.append(nn.Sequential(StackedConvs(kw["n_conv_per_stage"][i], c, f[i], k[i], s[i])))
            c = f[i]
        self.decoder = nn.Module()
        self.decoder.transpconvs, self.decoder.stages = nn.ModuleList(), nn.ModuleList()
        for t in range(n - 1):
            below, skip, stride = f[n - 1 - t], f[n - 2 - t], s[n - 1 - t]
            self.decoder.transpconvs.append(nn.ConvTranspose3d(below, skip, stride, stride, bias=True))
            self.decoder.stages.append(StackedConvs(kw["n_conv_per_stage_decoder"][t], 2 * skip, skip, k[n - 2 - t], 1))
        self.seg_head = nn.Conv3d(f[0], num_classes, 1, 1, 0, bias=True)

    def forward(self, x):
        skips = []
        for stage in self.encoder.stages:
            x = stage(x)
            skips.append(x)
        x = skips[-1]
        for t, (up, stage) in enumerate(zip(self.decoder.transpconvs, self.decoder.stages)):
            # upsampled first, then the skip, as UNetDecoder concatenates
            x = stage(torch.cat((up(x), skips[-(t + 2)]), 1))
        return self.seg_head(x)


def inference_weights(state, n_stages):
    """The keys inference needs: no all_modules / decoder.encoder duplicates, one seg head."""
    head = f"decoder.seg_layers.{n_stages - 2}."
    keep = re.compile(r"^(encoder\.stages\.\d+\.0\.convs\.\d+\.(conv|norm)\.|decoder\.(stages\.\d+\.convs\.\d+\.(conv|norm)|transpconvs\.\d+)\.)")
    out = {k: v for k, v in state.items() if keep.match(k)}
    out.update({"seg_head." + k[len(head):]: v for k, v in state.items() if k.startswith(head)})
    return out


def compute_gaussian(patch):
    tmp = np.zeros(patch)
    tmp[tuple(p // 2 for p in patch)] = 1
    g = torch.from_numpy(gaussian_filter(tmp, [p / 8 for p in patch], 0, mode="constant", cval=0))
    g /= torch.max(g) / 10
    g = g.to(dtype=torch.float16)
    g[g == 0] = torch.min(g[g != 0])
    return g


def steps_for_sliding_window(image, patch, step_size=0.5):
    steps = []
    for size, p in zip(image, patch):
        n = int(np.ceil((size - p) / (p * step_size))) + 1
        actual = (size - p) / (n - 1) if n > 1 else 99999999999
        steps.append([int(np.round(actual * i)) for i in range(n)])
    return steps


def mirror_and_predict(network, x, mirror_axes):
    prediction = network(x)
    if mirror_axes:
        axes = [a + 2 for a in mirror_axes]
        combos = [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]
        for c in combos:
            prediction += torch.flip(network(torch.flip(x, c)), c)
        prediction /= len(combos) + 1
    return prediction


def sliding_window_logits(network, data, patch, num_classes, gaussian, mirror_axes):
    shape = data.shape[1:]
    pad = [(max(0, p - s) // 2, max(0, p - s) - max(0, p - s) // 2) for s, p in zip(shape, patch)]
    if any(a or b for a, b in pad):
        # F.pad lists the last axis first
        data = torch.nn.functional.pad(data, [v for a in reversed(pad) for v in a], "constant", 0)
    padded = data.shape[1:]
    logits = torch.zeros((num_classes, *padded), dtype=torch.half)
    weights = torch.zeros(padded, dtype=torch.half)
    for x, y, z in itertools.product(*steps_for_sliding_window(padded, patch)):
        sl = (slice(x, x + patch[0]), slice(y, y + patch[1]), slice(z, z + patch[2]))
        prediction = mirror_and_predict(network, data[(slice(None), *sl)][None], mirror_axes)[0]
        prediction *= gaussian
        logits[(slice(None), *sl)] += prediction
        weights[sl] += gaussian
    torch.div(logits, weights, out=logits)
    if torch.any(torch.isinf(logits)):
        raise RuntimeError("float16 overflow in the sliding-window logits")
    return logits[(slice(None), *(slice(a, a + s) for (a, _), s in zip(pad, shape)))]


def predict_case(network, fold_weights, data, patch, num_classes, gaussian, mirror_axes):
    """predict_logits_from_preprocessed_data: every fold's logits summed in float16, then averaged."""
    prediction = None
    for weights in fold_weights:
        network.load_state_dict(weights)
        logits = sliding_window_logits(network, data, patch, num_classes, gaussian, mirror_axes)
        prediction = logits if prediction is None else prediction + logits
    if len(fold_weights) > 1:
        prediction /= len(fold_weights)
    return prediction


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-folder", required=True, help="<Trainer>__<Plans>__<configuration> folder")
    ap.add_argument("--folds", default="0", help="comma-separated fold names (fold_X/checkpoint_final.pth each)")
    ap.add_argument("--tta", action="store_true", help="mirror over the checkpoint's inference_allowed_mirroring_axes")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed predictions of the first case")
    ap.add_argument("--save-logits", help="write the first case's logits (float32 .npy) here")
    ap.add_argument("cases", nargs="+", help="preprocessed float32 .npy files (c, x, y, z)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    plans = json.load(open(os.path.join(a.model_folder, "plans.json")))
    dataset = json.load(open(os.path.join(a.model_folder, "dataset.json")))
    configuration = os.path.basename(os.path.normpath(a.model_folder)).split("__")[2]
    config = plans["configurations"][configuration]
    kw = config["architecture"]["arch_kwargs"]
    patch = config["patch_size"]
    num_classes = len(dataset["labels"])
    fold_weights, mirror_axes = [], None
    for fold in a.folds.split(","):
        ck = torch.load(os.path.join(a.model_folder, f"fold_{fold}", "checkpoint_final.pth"), map_location="cpu", weights_only=False)
        fold_weights.append(inference_weights(ck["network_weights"], kw["n_stages"]))
        mirror_axes = ck["inference_allowed_mirroring_axes"] if a.tta else None
    network = PlainConvUNet(len(dataset["channel_names"]), num_classes, kw).eval()
    gaussian = compute_gaussian(patch)
    cases = [torch.from_numpy(np.load(f)) for f in a.cases]

    def run(data):
        return predict_case(network, fold_weights, data, patch, num_classes, gaussian, mirror_axes)

    with torch.inference_mode():
        for _ in range(a.warmup):
            run(cases[0])
        if a.save_logits:
            np.save(a.save_logits, run(cases[0]).float().numpy())
        per_repeat, per_case, cpu_per_case = [], [], []
        for _ in range(a.repeats):
            times, cpu = [], []
            for data in cases:
                t0, c0 = time.perf_counter(), time.process_time()
                run(data)
                times.append(time.perf_counter() - t0)
                # CPU seconds of every thread: less sensitive than wall time to other load on the machine
                cpu.append(time.process_time() - c0)
            per_case.append(times)
            cpu_per_case.append(cpu)
            per_repeat.append(sum(times) / len(times))
    print(json.dumps({
        "seconds_per_case": statistics.median(per_repeat),
        "seconds_per_case_per_repeat": per_repeat,
        "seconds_per_case_detail": per_case,
        "cpu_seconds_per_case_detail": cpu_per_case,
        "with_tta": bool(a.tta),
        "mirror_axes": list(mirror_axes or []),
        "folds": len(fold_weights),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        # Debian's build has no MKL (generic BLAS): say so next to the numbers it produces
        "blas": re.search(r"BLAS_INFO=(\w+)", torch.__config__.show()).group(1) if "BLAS_INFO=" in torch.__config__.show() else "unknown",
        "mkl": torch.backends.mkl.is_available(),
    }))


if __name__ == "__main__":
    main()
