// Optimiser primitives: one SGD step over a parameter list (torch.optim.SGD's update rule,
// momentum buffers owned by the caller so checkpoints can read and write them) and
// gradient-norm clipping with clip_grad_norm_'s semantics.
#include "common.h"

#include <limits>

namespace nt {
namespace {

// sgdStep(params[], buffers[] (null = not yet created), lr, momentum, dampening, weightDecay,
// nesterov) -> buffers created by this step (null where the caller's was used).
// Per parameter with a gradient, as torch.optim.SGD (single-tensor path):
//   d = g + wd*p; buf = d (first step) or m*buf + (1-dampening)*d; d = nesterov ? d + m*buf : buf;
//   p -= lr*d
Napi::Value SgdStep(const Args& info) {
  std::vector<at::Tensor> params = TList(info, 0);
  auto bufArr = info[1].As<Napi::Array>();
  if (bufArr.Length() != params.size()) throw std::invalid_argument("sgdStep: one buffer slot per parameter");
  double lr = Num(info, 2), momentum = Num(info, 3), dampening = Num(info, 4), wd = Num(info, 5);
  bool nesterov = Bool(info, 6);
  at::NoGradGuard noGrad;
  auto created = Napi::Array::New(info.Env(), params.size());
  for (size_t i = 0; i < params.size(); i++) {
    at::Tensor& p = params[i];
    created.Set(static_cast<uint32_t>(i), info.Env().Null());
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    at::Tensor d = wd != 0 ? g.add(p, wd) : g;
    if (momentum != 0) {
      Napi::Value slot = bufArr.Get(static_cast<uint32_t>(i));
      at::Tensor buf;
      if (slot.IsNull() || slot.IsUndefined()) {
        buf = d.clone().detach();
        created.Set(static_cast<uint32_t>(i), Wrap(info.Env(), buf));
      } else {
        buf = TensorOf(info.Env(), slot);
        buf.mul_(momentum).add_(d, 1 - dampening);
      }
      d = nesterov ? d.add(buf, momentum) : buf;
    }
    p.add_(d, -lr);
  }
  return created;
}

// clipGradNorm(params[], maxNorm, normType) -> total norm (before clipping), as
// torch.nn.utils.clip_grad_norm_: coef = maxNorm / (total + 1e-6), clamped to 1.
Napi::Value ClipGradNorm(const Args& info) {
  std::vector<at::Tensor> params = TList(info, 0);
  double maxNorm = Num(info, 1);
  double normType = Present(info, 2) ? Num(info, 2) : 2.0;
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return Napi::Number::New(info.Env(), 0.0);
  std::vector<at::Tensor> norms;
  norms.reserve(grads.size());
  bool inf = std::isinf(normType);
  for (const auto& g : grads) {
    norms.push_back(inf ? g.detach().abs().max() : at::linalg_vector_norm(g.detach(), normType));
  }
  at::Tensor stacked = at::stack(norms);
  at::Tensor total = inf ? stacked.max() : at::linalg_vector_norm(stacked, normType);
  at::Tensor coef = at::clamp(maxNorm / (total + 1e-6), c10::nullopt, 1.0);
  for (auto& g : grads) g.detach().mul_(coef.to(g.device()));
  return Napi::Number::New(info.Env(), total.item<double>());
}

}  // namespace

void RegisterOptim(Napi::Env env, Napi::Object exports) {
  Export<SgdStep>(env, exports, "sgdStep");
  Export<ClipGradNorm>(env, exports, "clipGradNorm");
}

}  // namespace nt
