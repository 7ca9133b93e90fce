// Elementwise arithmetic (broadcasting), comparisons, reductions and matmul. Ops are picked
// by name from small tables so the binding stays a mechanical mapping onto ATen.
#include "common.h"

#include <unordered_map>

namespace nt {
namespace {

using Unary = at::Tensor (*)(const at::Tensor&);
using Binary = at::Tensor (*)(const at::Tensor&, const at::Tensor&);

const std::unordered_map<std::string, Unary>& UnaryOps() {
  static const std::unordered_map<std::string, Unary> ops = {
      {"neg", [](const at::Tensor& a) { return at::neg(a); }},
      {"exp", [](const at::Tensor& a) { return at::exp(a); }},
      {"log", [](const at::Tensor& a) { return at::log(a); }},
      {"log1p", [](const at::Tensor& a) { return at::log1p(a); }},
      {"sqrt", [](const at::Tensor& a) { return at::sqrt(a); }},
      {"rsqrt", [](const at::Tensor& a) { return at::rsqrt(a); }},
      {"abs", [](const at::Tensor& a) { return at::abs(a); }},
      {"sign", [](const at::Tensor& a) { return at::sign(a); }},
      {"floor", [](const at::Tensor& a) { return at::floor(a); }},
      {"ceil", [](const at::Tensor& a) { return at::ceil(a); }},
      {"round", [](const at::Tensor& a) { return at::round(a); }},
      {"reciprocal", [](const at::Tensor& a) { return at::reciprocal(a); }},
      {"square", [](const at::Tensor& a) { return at::square(a); }},
      {"sin", [](const at::Tensor& a) { return at::sin(a); }},
      {"cos", [](const at::Tensor& a) { return at::cos(a); }},
      {"tanh", [](const at::Tensor& a) { return at::tanh(a); }},
      {"sigmoid", [](const at::Tensor& a) { return at::sigmoid(a); }},
      {"relu", [](const at::Tensor& a) { return at::relu(a); }},
      {"logicalNot", [](const at::Tensor& a) { return at::logical_not(a); }},
      {"isnan", [](const at::Tensor& a) { return at::isnan(a); }},
      {"isfinite", [](const at::Tensor& a) { return at::isfinite(a); }},
  };
  return ops;
}

const std::unordered_map<std::string, Binary>& BinaryOps() {
  static const std::unordered_map<std::string, Binary> ops = {
      {"add", [](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }},
      {"sub", [](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); }},
      {"mul", [](const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); }},
      {"div", [](const at::Tensor& a, const at::Tensor& b) { return at::div(a, b); }},
      {"pow", [](const at::Tensor& a, const at::Tensor& b) { return at::pow(a, b); }},
      {"remainder", [](const at::Tensor& a, const at::Tensor& b) { return at::remainder(a, b); }},
      {"maximum", [](const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); }},
      {"minimum", [](const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); }},
      {"eq", [](const at::Tensor& a, const at::Tensor& b) { return at::eq(a, b); }},
      {"ne", [](const at::Tensor& a, const at::Tensor& b) { return at::ne(a, b); }},
      {"gt", [](const at::Tensor& a, const at::Tensor& b) { return at::gt(a, b); }},
      {"lt", [](const at::Tensor& a, const at::Tensor& b) { return at::lt(a, b); }},
      {"ge", [](const at::Tensor& a, const at::Tensor& b) { return at::ge(a, b); }},
      {"le", [](const at::Tensor& a, const at::Tensor& b) { return at::le(a, b); }},
      {"logicalAnd", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_and(a, b); }},
      {"logicalOr", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_or(a, b); }},
      {"matmul", [](const at::Tensor& a, const at::Tensor& b) { return at::matmul(a, b); }},
  };
  return ops;
}

// unary(op, t)
Napi::Value UnaryOp(const Args& info) {
  std::string op = Str(info, 0);
  auto it = UnaryOps().find(op);
  if (it == UnaryOps().end()) throw std::invalid_argument("unknown unary op '" + op + "'");
  return Wrap(info.Env(), it->second(T(info, 1)));
}

// binary(op, a, b): a tensor, b a tensor or a number; broadcasting and type promotion as torch.
// A number on the left (2 - x) is allowed too.
Napi::Value BinaryOp(const Args& info) {
  std::string op = Str(info, 0);
  auto it = BinaryOps().find(op);
  if (it == BinaryOps().end()) throw std::invalid_argument("unknown binary op '" + op + "'");
  return Wrap(info.Env(), it->second(TOrScalar(info, 1), TOrScalar(info, 2)));
}

// clamp(t, min?, max?)
Napi::Value Clamp(const Args& info) {
  c10::optional<at::Scalar> lo = Present(info, 1) ? c10::optional<at::Scalar>(ScalarArg(info, 1)) : c10::nullopt;
  c10::optional<at::Scalar> hi = Present(info, 2) ? c10::optional<at::Scalar>(ScalarArg(info, 2)) : c10::nullopt;
  return Wrap(info.Env(), at::clamp(T(info, 0), lo, hi));
}

// where(cond, a, b): a and b tensors or numbers.
Napi::Value Where(const Args& info) {
  const at::Tensor& cond = T(info, 0);
  bool aT = IsHandle(info[1]), bT = IsHandle(info[2]);
  if (aT && bT) return Wrap(info.Env(), at::where(cond, T(info, 1), T(info, 2)));
  if (aT) return Wrap(info.Env(), at::where(cond, T(info, 1), ScalarArg(info, 2)));
  if (bT) return Wrap(info.Env(), at::where(cond, ScalarArg(info, 1), T(info, 2)));
  return Wrap(info.Env(), at::where(cond, ScalarArg(info, 1), ScalarArg(info, 2)));
}

// reduce(op, t, dims?, keepdim): sum, mean, amax, amin, prod over dims (all when omitted).
Napi::Value Reduce(const Args& info) {
  std::string op = Str(info, 0);
  const at::Tensor& t = T(info, 1);
  auto dims = OptInts(info, 2);
  bool keep = Present(info, 3) && Bool(info, 3);
  at::Tensor r;
  if (op == "sum") {
    r = dims ? at::sum(t, *dims, keep) : at::sum(t);
  } else if (op == "mean") {
    r = dims ? at::mean(t, *dims, keep) : at::mean(t);
  } else if (op == "max") {
    r = dims ? at::amax(t, *dims, keep) : at::max(t);
  } else if (op == "min") {
    r = dims ? at::amin(t, *dims, keep) : at::min(t);
  } else if (op == "prod") {
    if (!dims) {
      r = at::prod(t);
    } else {
      r = t;
      std::vector<int64_t> sorted = *dims;
      for (auto& d : sorted) d = c10::maybe_wrap_dim(d, t.dim());
      std::sort(sorted.rbegin(), sorted.rend());
      for (int64_t d : sorted) r = at::prod(r, d, keep);
    }
  } else if (op == "any") {
    r = at::any(t);
  } else if (op == "all") {
    r = at::all(t);
  } else {
    throw std::invalid_argument("unknown reduction '" + op + "'");
  }
  return Wrap(info.Env(), r);
}

// variance(t, dims?, unbiased, keepdim, std?)
Napi::Value Variance(const Args& info) {
  const at::Tensor& t = T(info, 0);
  auto dims = OptInts(info, 1);
  bool unbiased = !Present(info, 2) || Bool(info, 2);
  bool keep = Present(info, 3) && Bool(info, 3);
  bool sd = Present(info, 4) && Bool(info, 4);
  at::OptionalIntArrayRef d = dims ? at::OptionalIntArrayRef(*dims) : c10::nullopt;
  return Wrap(info.Env(), sd ? at::std(t, d, unbiased, keep) : at::var(t, d, unbiased, keep));
}

// argmax(t, dim?, keepdim) / argmin
Napi::Value Argmax(const Args& info) {
  c10::optional<int64_t> dim = Present(info, 1) ? c10::optional<int64_t>(Int(info, 1)) : c10::nullopt;
  return Wrap(info.Env(), at::argmax(T(info, 0), dim, Present(info, 2) && Bool(info, 2)));
}
Napi::Value Argmin(const Args& info) {
  c10::optional<int64_t> dim = Present(info, 1) ? c10::optional<int64_t>(Int(info, 1)) : c10::nullopt;
  return Wrap(info.Env(), at::argmin(T(info, 0), dim, Present(info, 2) && Bool(info, 2)));
}

// norm(t, p, dims?, keepdim): vector norm as torch.linalg.vector_norm.
Napi::Value Norm(const Args& info) {
  auto dims = OptInts(info, 2);
  at::OptionalIntArrayRef d = dims ? at::OptionalIntArrayRef(*dims) : c10::nullopt;
  return Wrap(info.Env(), at::linalg_vector_norm(T(info, 0), Num(info, 1), d, Present(info, 3) && Bool(info, 3)));
}

Napi::Value Allclose(const Args& info) {
  return Napi::Boolean::New(info.Env(), at::allclose(T(info, 0), T(info, 1), Num(info, 2), Num(info, 3)));
}

}  // namespace

void RegisterMath(Napi::Env env, Napi::Object exports) {
  Export<UnaryOp>(env, exports, "unary");
  Export<BinaryOp>(env, exports, "binary");
  Export<Clamp>(env, exports, "clamp");
  Export<Where>(env, exports, "where");
  Export<Reduce>(env, exports, "reduce");
  Export<Variance>(env, exports, "variance");
  Export<Argmax>(env, exports, "argmax");
  Export<Argmin>(env, exports, "argmin");
  Export<Norm>(env, exports, "norm");
  Export<Allclose>(env, exports, "allclose");
}

}  // namespace nt
