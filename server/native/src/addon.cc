// Module entry and the shared helpers of common.h: tensor handles, argument conversion.
// A handle is an N-API external owning one at::Tensor; dispose() releases it at once, the
// garbage collector's finalizer only as a fallback.
#include "common.h"

#include <cmath>

namespace nt {

std::atomic<int64_t> g_live{0};

namespace {

struct Slot {
  at::Tensor t;
};

const napi_type_tag kHandleTag = {0x6e6e756e65747473ULL, 0x746f7263685f7631ULL};

Slot* SlotOf(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  auto ext = v.As<Napi::External<Slot>>();
  if (!ext.CheckTypeTag(&kHandleTag)) return nullptr;
  return ext.Data();
}

Napi::Value Arg(const Args& info, size_t i) { return i < info.Length() ? info[i] : info.Env().Undefined(); }

[[noreturn]] void Bad(const Args& info, size_t i, const char* what) {
  throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + ": expected " + what);
}

}  // namespace

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  auto* slot = new Slot{std::move(t)};
  if (slot->t.defined()) g_live++;
  auto ext = Napi::External<Slot>::New(env, slot, [](Napi::Env, Slot* s) {
    if (s->t.defined()) g_live--;
    delete s;
  });
  ext.TypeTag(&kHandleTag);
  return ext;
}

bool IsHandle(const Napi::Value& v) { return SlotOf(v) != nullptr; }

bool IsDefinedHandle(const Napi::Value& v) {
  Slot* s = SlotOf(v);
  return s != nullptr && s->t.defined();
}

const at::Tensor& T(const Args& info, size_t i) {
  if (SlotOf(Arg(info, i)) == nullptr) Bad(info, i, "a tensor");
  return TensorOf(info.Env(), Arg(info, i));
}

const at::Tensor& TensorOf(Napi::Env env, const Napi::Value& v) {
  Slot* s = SlotOf(v);
  if (s == nullptr) throw Napi::TypeError::New(env, "expected a tensor");
  if (!s->t.defined()) throw Napi::Error::New(env, "tensor was disposed: it can no longer be used");
  return s->t;
}

void Release(const Napi::Value& handle) {
  Slot* s = SlotOf(handle);
  if (s != nullptr && s->t.defined()) {
    s->t = at::Tensor();
    g_live--;
  }
}

c10::optional<at::Tensor> OptT(const Args& info, size_t i) {
  if (!Present(info, i)) return c10::nullopt;
  return T(info, i);
}

at::Tensor TOrScalar(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (v.IsNumber() || v.IsBoolean() || v.IsBigInt()) {
    at::Scalar s = ScalarArg(info, i);
    auto dtype = s.isBoolean() ? at::kBool : s.isIntegral(false) ? at::kLong : at::kDouble;
    at::Tensor t = at::scalar_tensor(s, at::TensorOptions().dtype(dtype));
    t.unsafeGetTensorImpl()->set_wrapped_number(true);
    return t;
  }
  return T(info, i);
}

std::vector<at::Tensor> TList(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (!v.IsArray()) Bad(info, i, "an array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    if (SlotOf(arr.Get(k)) == nullptr) Bad(info, i, "an array of tensors");
    out.push_back(TensorOf(info.Env(), arr.Get(k)));
  }
  return out;
}

bool Present(const Args& info, size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

int64_t Int(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (v.IsBigInt()) {
    bool lossless = false;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (!v.IsNumber()) Bad(info, i, "an integer");
  return v.As<Napi::Number>().Int64Value();
}

double Num(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (!v.IsNumber()) Bad(info, i, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool Bool(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (!v.IsBoolean()) Bad(info, i, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string Str(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (!v.IsString()) Bad(info, i, "a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Ints(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (v.IsNumber()) return {v.As<Napi::Number>().Int64Value()};
  if (!v.IsArray()) Bad(info, i, "an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) Bad(info, i, "an array of integers");
    out[k] = e.As<Napi::Number>().Int64Value();
  }
  return out;
}

c10::optional<std::vector<int64_t>> OptInts(const Args& info, size_t i) {
  if (!Present(info, i)) return c10::nullopt;
  return Ints(info, i);
}

c10::optional<double> OptNum(const Args& info, size_t i) {
  if (!Present(info, i)) return c10::nullopt;
  return Num(info, i);
}

at::Scalar ScalarArg(const Args& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) {
    bool lossless = false;
    return at::Scalar(static_cast<int64_t>(v.As<Napi::BigInt>().Int64Value(&lossless)));
  }
  if (!v.IsNumber()) Bad(info, i, "a number");
  double d = v.As<Napi::Number>().DoubleValue();
  // Integral JS numbers become integer scalars so int tensors stay int (x + 1, x * 2).
  if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9007199254740992.0) {
    return at::Scalar(static_cast<int64_t>(d));
  }
  return at::Scalar(d);
}

at::ScalarType DType(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  if (name == "int16") return at::kShort;
  if (name == "int8") return at::kChar;
  if (name == "uint8") return at::kByte;
  if (name == "bool") return at::kBool;
  throw std::invalid_argument("unknown dtype '" + name + "'");
}

std::string DTypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

at::Device Dev(const std::string& name) { return at::Device(name); }

std::string DevName(const at::Device& d) { return d.str(); }

at::TensorOptions Opts(const Args& info, size_t i, at::ScalarType fallback) {
  auto o = at::TensorOptions().dtype(Present(info, i) ? DType(Str(info, i)) : fallback);
  if (Present(info, i + 1)) o = o.device(Dev(Str(info, i + 1)));
  return o;
}

Napi::Array ToArray(Napi::Env env, at::IntArrayRef v) {
  auto arr = Napi::Array::New(env, v.size());
  for (size_t k = 0; k < v.size(); k++) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(env, double(v[k])));
  return arr;
}

}  // namespace nt

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nt::RegisterTensor(env, exports);
  nt::RegisterShape(env, exports);
  nt::RegisterMath(env, exports);
  nt::RegisterNn(env, exports);
  nt::RegisterAutograd(env, exports);
  nt::RegisterOptim(env, exports);
  return exports;
}

NODE_API_MODULE(nnunet_torch, Init)
