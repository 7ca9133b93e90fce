// Shape and indexing ops: views, concatenation, slicing, padding, gather/scatter, one-hot.
// Each maps one-to-one onto the ATen function of the same name.
#include "common.h"

namespace nt {
namespace {

Napi::Value Reshape(const Args& info) { return Wrap(info.Env(), T(info, 0).reshape(Ints(info, 1))); }
Napi::Value View(const Args& info) { return Wrap(info.Env(), T(info, 0).view(Ints(info, 1))); }
Napi::Value Permute(const Args& info) { return Wrap(info.Env(), T(info, 0).permute(Ints(info, 1))); }
Napi::Value Transpose(const Args& info) { return Wrap(info.Env(), T(info, 0).transpose(Int(info, 1), Int(info, 2))); }
Napi::Value Expand(const Args& info) { return Wrap(info.Env(), T(info, 0).expand(Ints(info, 1))); }
Napi::Value Repeat(const Args& info) { return Wrap(info.Env(), T(info, 0).repeat(Ints(info, 1))); }
Napi::Value Unsqueeze(const Args& info) { return Wrap(info.Env(), T(info, 0).unsqueeze(Int(info, 1))); }

// squeeze(t, dim?): all size-1 dims, or just `dim`.
Napi::Value Squeeze(const Args& info) {
  const at::Tensor& t = T(info, 0);
  return Wrap(info.Env(), Present(info, 1) ? t.squeeze(Int(info, 1)) : t.squeeze());
}

// slice(t, dim, start, end, step): end may be omitted (to the end).
Napi::Value Slice(const Args& info) {
  c10::optional<int64_t> end = Present(info, 3) ? c10::optional<int64_t>(Int(info, 3)) : c10::nullopt;
  return Wrap(info.Env(), T(info, 0).slice(Int(info, 1), Int(info, 2), end, Present(info, 4) ? Int(info, 4) : 1));
}

Napi::Value Narrow(const Args& info) {
  return Wrap(info.Env(), T(info, 0).narrow(Int(info, 1), Int(info, 2), Int(info, 3)));
}

Napi::Value IndexSelect(const Args& info) {
  return Wrap(info.Env(), at::index_select(T(info, 0), Int(info, 1), T(info, 2)));
}

Napi::Value Flip(const Args& info) { return Wrap(info.Env(), at::flip(T(info, 0), Ints(info, 1))); }
Napi::Value Cat(const Args& info) { return Wrap(info.Env(), at::cat(TList(info, 0), Int(info, 1))); }
Napi::Value Stack(const Args& info) { return Wrap(info.Env(), at::stack(TList(info, 0), Int(info, 1))); }

// pad(t, pads, mode, value): pads as in torch.nn.functional.pad (last dim first).
Napi::Value Pad(const Args& info) {
  const at::Tensor& t = T(info, 0);
  auto pads = Ints(info, 1);
  std::string mode = Present(info, 2) ? Str(info, 2) : "constant";
  if (mode == "constant") {
    return Wrap(info.Env(), at::constant_pad_nd(t, pads, Present(info, 3) ? ScalarArg(info, 3) : at::Scalar(0)));
  }
  size_t spatial = pads.size() / 2;
  if (mode == "reflect") {
    if (spatial == 1) return Wrap(info.Env(), at::reflection_pad1d(t, pads));
    if (spatial == 2) return Wrap(info.Env(), at::reflection_pad2d(t, pads));
    if (spatial == 3) return Wrap(info.Env(), at::reflection_pad3d(t, pads));
  }
  if (mode == "replicate") {
    if (spatial == 1) return Wrap(info.Env(), at::replication_pad1d(t, pads));
    if (spatial == 2) return Wrap(info.Env(), at::replication_pad2d(t, pads));
    if (spatial == 3) return Wrap(info.Env(), at::replication_pad3d(t, pads));
  }
  throw std::invalid_argument("pad: unsupported mode '" + mode + "' for " + std::to_string(spatial) + " padded dims");
}

Napi::Value Gather(const Args& info) { return Wrap(info.Env(), at::gather(T(info, 0), Int(info, 1), T(info, 2))); }

// scatter(t, dim, index, src): src a tensor or a number; out of place.
Napi::Value Scatter(const Args& info) {
  const at::Tensor& t = T(info, 0);
  if (IsHandle(info[3])) return Wrap(info.Env(), at::scatter(t, Int(info, 1), T(info, 2), T(info, 3)));
  return Wrap(info.Env(), at::scatter(t, Int(info, 1), T(info, 2), ScalarArg(info, 3)));
}

Napi::Value ScatterAdd(const Args& info) {
  return Wrap(info.Env(), at::scatter_add(T(info, 0), Int(info, 1), T(info, 2), T(info, 3)));
}

// oneHot(t, numClasses): int64 input, int64 output with a new last dim.
Napi::Value OneHot(const Args& info) {
  return Wrap(info.Env(), at::one_hot(T(info, 0), Present(info, 1) ? Int(info, 1) : -1));
}

Napi::Value MaskedFill(const Args& info) {
  const at::Tensor& t = T(info, 0);
  if (IsHandle(info[2])) return Wrap(info.Env(), at::masked_fill(t, T(info, 1), T(info, 2)));
  return Wrap(info.Env(), at::masked_fill(t, T(info, 1), ScalarArg(info, 2)));
}

Napi::Value MaskedSelect(const Args& info) { return Wrap(info.Env(), at::masked_select(T(info, 0), T(info, 1))); }
Napi::Value Nonzero(const Args& info) { return Wrap(info.Env(), at::nonzero(T(info, 0))); }

}  // namespace

void RegisterShape(Napi::Env env, Napi::Object exports) {
  Export<Reshape>(env, exports, "reshape");
  Export<View>(env, exports, "view");
  Export<Permute>(env, exports, "permute");
  Export<Transpose>(env, exports, "transpose");
  Export<Expand>(env, exports, "expand");
  Export<Repeat>(env, exports, "repeat");
  Export<Unsqueeze>(env, exports, "unsqueeze");
  Export<Squeeze>(env, exports, "squeeze");
  Export<Slice>(env, exports, "slice");
  Export<Narrow>(env, exports, "narrow");
  Export<IndexSelect>(env, exports, "indexSelect");
  Export<Flip>(env, exports, "flip");
  Export<Cat>(env, exports, "cat");
  Export<Stack>(env, exports, "stack");
  Export<Pad>(env, exports, "pad");
  Export<Gather>(env, exports, "gather");
  Export<Scatter>(env, exports, "scatter");
  Export<ScatterAdd>(env, exports, "scatterAdd");
  Export<OneHot>(env, exports, "oneHot");
  Export<MaskedFill>(env, exports, "maskedFill");
  Export<MaskedSelect>(env, exports, "maskedSelect");
  Export<Nonzero>(env, exports, "nonzero");
}

}  // namespace nt
