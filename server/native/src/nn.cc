// Neural-network ops (torch.nn.functional equivalents): convolutions, normalisation,
// activations, softmax, losses, resampling (interpolate, affine_grid, grid_sample).
// Arguments arrive already expanded to per-dimension lists by the TypeScript side.
#include "common.h"

namespace nt {
namespace {

// conv(input, weight, bias?, stride[], padding[], dilation[], transposed, outputPadding[], groups)
// One entry for conv1d/2d/3d and their transposes, as at::convolution.
Napi::Value Conv(const Args& info) {
  return Wrap(info.Env(), at::convolution(T(info, 0), T(info, 1), OptT(info, 2), Ints(info, 3), Ints(info, 4),
                                          Ints(info, 5), Bool(info, 6), Ints(info, 7), Int(info, 8)));
}

// instanceNorm(input, weight?, bias?, eps)
Napi::Value InstanceNorm(const Args& info) {
  return Wrap(info.Env(), at::instance_norm(T(info, 0), OptT(info, 1), OptT(info, 2), c10::nullopt, c10::nullopt,
                                            /*use_input_stats=*/true, /*momentum=*/0.1, Num(info, 3),
                                            at::globalContext().userEnabledCuDNN()));
}

// groupNorm(input, groups, weight?, bias?, eps)
Napi::Value GroupNorm(const Args& info) {
  return Wrap(info.Env(), at::group_norm(T(info, 0), Int(info, 1), OptT(info, 2), OptT(info, 3), Num(info, 4),
                                         at::globalContext().userEnabledCuDNN()));
}

// batchNorm(input, runningMean?, runningVar?, weight?, bias?, training, momentum, eps)
Napi::Value BatchNorm(const Args& info) {
  return Wrap(info.Env(), at::batch_norm(T(info, 0), OptT(info, 3), OptT(info, 4), OptT(info, 1), OptT(info, 2),
                                         Bool(info, 5), Num(info, 6), Num(info, 7),
                                         at::globalContext().userEnabledCuDNN()));
}

Napi::Value LeakyRelu(const Args& info) { return Wrap(info.Env(), at::leaky_relu(T(info, 0), Num(info, 1))); }
Napi::Value Softmax(const Args& info) { return Wrap(info.Env(), at::softmax(T(info, 0), Int(info, 1))); }
Napi::Value LogSoftmax(const Args& info) { return Wrap(info.Env(), at::log_softmax(T(info, 0), Int(info, 1))); }
Napi::Value Dropout(const Args& info) { return Wrap(info.Env(), at::dropout(T(info, 0), Num(info, 1), Bool(info, 2))); }

int64_t ReductionOf(const std::string& r) {
  if (r == "none") return at::Reduction::None;
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  throw std::invalid_argument("unknown reduction '" + r + "' (none, mean, sum)");
}

// nllLoss(logProbs, target, weight?, reduction, ignoreIndex): any number of spatial dims.
Napi::Value NllLoss(const Args& info) {
  return Wrap(info.Env(), at::nll_loss_nd(T(info, 0), T(info, 1), OptT(info, 2), ReductionOf(Str(info, 3)), Int(info, 4)));
}

// crossEntropy(logits, target, weight?, reduction, ignoreIndex, labelSmoothing)
Napi::Value CrossEntropy(const Args& info) {
  return Wrap(info.Env(), at::cross_entropy_loss(T(info, 0), T(info, 1), OptT(info, 2), ReductionOf(Str(info, 3)),
                                                 Int(info, 4), Num(info, 5)));
}

// bceWithLogits(logits, target, weight?, posWeight?, reduction)
Napi::Value BceWithLogits(const Args& info) {
  return Wrap(info.Env(), at::binary_cross_entropy_with_logits(T(info, 0), T(info, 1), OptT(info, 2), OptT(info, 3),
                                                               ReductionOf(Str(info, 4))));
}

// interpolate(input, mode, size?, scaleFactors?, alignCorners?): as torch.nn.functional.interpolate
// with recompute_scale_factor unset; modes nearest, linear (bi-/trilinear by rank), bicubic, area.
Napi::Value Interpolate(const Args& info) {
  const at::Tensor& x = T(info, 0);
  std::string mode = Str(info, 1);
  auto size = OptInts(info, 2);
  bool hasScales = Present(info, 3);
  std::vector<double> scaleList;
  if (hasScales) {
    auto arr = info[3].As<Napi::Array>();
    for (uint32_t k = 0; k < arr.Length(); k++) scaleList.push_back(arr.Get(k).As<Napi::Number>().DoubleValue());
  }
  bool align = Present(info, 4) && Bool(info, 4);
  int64_t spatial = x.dim() - 2;
  if (size.has_value() == hasScales) throw std::invalid_argument("interpolate: give exactly one of size, scaleFactors");
  if ((size && int64_t(size->size()) != spatial) || (hasScales && int64_t(scaleList.size()) != spatial)) {
    throw std::invalid_argument("interpolate: size/scaleFactors need one entry per spatial dim (" + std::to_string(spatial) + ")");
  }
  at::OptionalIntArrayRef os = size ? at::OptionalIntArrayRef(*size) : c10::nullopt;
  c10::optional<at::ArrayRef<double>> sf =
      hasScales ? c10::optional<at::ArrayRef<double>>(at::ArrayRef<double>(scaleList)) : c10::nullopt;
  if (mode == "nearest") {
    if (spatial == 1) return Wrap(info.Env(), at::upsample_nearest1d(x, os, sf));
    if (spatial == 2) return Wrap(info.Env(), at::upsample_nearest2d(x, os, sf));
    if (spatial == 3) return Wrap(info.Env(), at::upsample_nearest3d(x, os, sf));
  } else if (mode == "linear" || mode == "bilinear" || mode == "trilinear") {
    if (spatial == 1) return Wrap(info.Env(), at::upsample_linear1d(x, os, align, sf));
    if (spatial == 2) return Wrap(info.Env(), at::upsample_bilinear2d(x, os, align, sf));
    if (spatial == 3) return Wrap(info.Env(), at::upsample_trilinear3d(x, os, align, sf));
  } else if (mode == "bicubic" && spatial == 2) {
    return Wrap(info.Env(), at::upsample_bicubic2d(x, os, align, sf));
  } else if (mode == "area") {
    std::vector<int64_t> out(spatial);
    for (int64_t d = 0; d < spatial; d++) {
      out[d] = size ? (*size)[d] : static_cast<int64_t>(std::floor(double(x.size(d + 2)) * scaleList[d]));
    }
    if (spatial == 1) return Wrap(info.Env(), at::adaptive_avg_pool1d(x, out));
    if (spatial == 2) return Wrap(info.Env(), at::adaptive_avg_pool2d(x, out));
    if (spatial == 3) return Wrap(info.Env(), at::adaptive_avg_pool3d(x, out));
  }
  throw std::invalid_argument("interpolate: mode '" + mode + "' is not supported for " + std::to_string(spatial) + " spatial dims");
}

// affineGrid(theta, size, alignCorners)
Napi::Value AffineGrid(const Args& info) {
  return Wrap(info.Env(), at::affine_grid_generator(T(info, 0), Ints(info, 1), Bool(info, 2)));
}

// gridSample(input, grid, mode, paddingMode, alignCorners)
Napi::Value GridSample(const Args& info) {
  std::string mode = Str(info, 2), pad = Str(info, 3);
  int64_t m = mode == "bilinear" ? 0 : mode == "nearest" ? 1 : mode == "bicubic" ? 2 : -1;
  int64_t p = pad == "zeros" ? 0 : pad == "border" ? 1 : pad == "reflection" ? 2 : -1;
  if (m < 0) throw std::invalid_argument("gridSample: mode must be bilinear, nearest or bicubic");
  if (p < 0) throw std::invalid_argument("gridSample: paddingMode must be zeros, border or reflection");
  return Wrap(info.Env(), at::grid_sampler(T(info, 0), T(info, 1), m, p, Bool(info, 4)));
}

// maxPool(input, kernel[], stride[], padding[]) / avgPool: 1-3 spatial dims by kernel length.
Napi::Value MaxPool(const Args& info) {
  const at::Tensor& x = T(info, 0);
  auto k = Ints(info, 1), s = Ints(info, 2), p = Ints(info, 3);
  if (k.size() == 1) return Wrap(info.Env(), at::max_pool1d(x, k, s, p));
  if (k.size() == 2) return Wrap(info.Env(), at::max_pool2d(x, k, s, p));
  return Wrap(info.Env(), at::max_pool3d(x, k, s, p));
}

Napi::Value AvgPool(const Args& info) {
  const at::Tensor& x = T(info, 0);
  auto k = Ints(info, 1), s = Ints(info, 2), p = Ints(info, 3);
  if (k.size() == 1) return Wrap(info.Env(), at::avg_pool1d(x, k, s, p));
  if (k.size() == 2) return Wrap(info.Env(), at::avg_pool2d(x, k, s, p));
  return Wrap(info.Env(), at::avg_pool3d(x, k, s, p));
}

}  // namespace

void RegisterNn(Napi::Env env, Napi::Object exports) {
  Export<Conv>(env, exports, "conv");
  Export<InstanceNorm>(env, exports, "instanceNorm");
  Export<GroupNorm>(env, exports, "groupNorm");
  Export<BatchNorm>(env, exports, "batchNorm");
  Export<LeakyRelu>(env, exports, "leakyRelu");
  Export<Softmax>(env, exports, "softmax");
  Export<LogSoftmax>(env, exports, "logSoftmax");
  Export<Dropout>(env, exports, "dropout");
  Export<NllLoss>(env, exports, "nllLoss");
  Export<CrossEntropy>(env, exports, "crossEntropy");
  Export<BceWithLogits>(env, exports, "bceWithLogits");
  Export<Interpolate>(env, exports, "interpolate");
  Export<AffineGrid>(env, exports, "affineGrid");
  Export<GridSample>(env, exports, "gridSample");
  Export<MaxPool>(env, exports, "maxPool");
  Export<AvgPool>(env, exports, "avgPool");
}

}  // namespace nt
