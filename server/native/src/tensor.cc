// Tensor lifetime and data movement: creation from typed arrays and factories, copying out,
// metadata, dtype/device conversion, dispose and the live-tensor counter.
#include "common.h"

#include <cstring>

namespace nt {
namespace {

at::ScalarType SourceType(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_int16_array: return at::kShort;
    case napi_int8_array: return at::kChar;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return at::kByte;
    case napi_bigint64_array: return at::kLong;
    default: throw std::invalid_argument("unsupported typed array (use Float32/Float64/Int32/BigInt64/Uint8/Int16/Int8)");
  }
}

// fromArray(typedArray, shape, dtype?): copies; converts when dtype differs from the array's.
Napi::Value FromArray(const Args& info) {
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "argument 0: expected a typed array");
  auto arr = info[0].As<Napi::TypedArray>();
  auto shape = Ints(info, 1);
  at::ScalarType src = SourceType(arr.TypedArrayType());
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(src));
  if (static_cast<size_t>(t.numel()) != arr.ElementLength()) {
    throw Napi::RangeError::New(info.Env(), "shape " + c10::str(t.sizes()) + " needs " + std::to_string(t.numel()) +
                                                " elements, the array has " + std::to_string(arr.ElementLength()));
  }
  const uint8_t* base = static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  if (t.nbytes() > 0) std::memcpy(t.data_ptr(), base, t.nbytes());
  if (Present(info, 2)) {
    at::ScalarType dst = DType(Str(info, 2));
    if (dst != src) t = t.to(dst);
  }
  return Wrap(info.Env(), std::move(t));
}

// data(t): a new typed array with a copy of the values (float16/bfloat16 come out as float32).
Napi::Value Data(const Args& info) {
  at::Tensor t = T(info, 0).detach();
  if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  t = t.to(at::kCPU).contiguous();
  size_t n = static_cast<size_t>(t.numel());
  napi_typedarray_type kind;
  switch (t.scalar_type()) {
    case at::kFloat: kind = napi_float32_array; break;
    case at::kDouble: kind = napi_float64_array; break;
    case at::kLong: kind = napi_bigint64_array; break;
    case at::kInt: kind = napi_int32_array; break;
    case at::kShort: kind = napi_int16_array; break;
    case at::kChar: kind = napi_int8_array; break;
    case at::kByte:
    case at::kBool: kind = napi_uint8_array; break;
    default: throw std::invalid_argument("cannot copy out dtype " + DTypeName(t.scalar_type()));
  }
  auto buf = Napi::ArrayBuffer::New(info.Env(), t.nbytes());
  if (t.nbytes() > 0) std::memcpy(buf.Data(), t.data_ptr(), t.nbytes());
  napi_value out;
  NAPI_THROW_IF_FAILED(info.Env(), napi_create_typedarray(info.Env(), kind, n, buf, 0, &out), Napi::Value());
  return Napi::Value(info.Env(), out);
}

Napi::Value Item(const Args& info) {
  at::Scalar s = T(info, 0).item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), double(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

Napi::Value Shape(const Args& info) { return ToArray(info.Env(), T(info, 0).sizes()); }
Napi::Value DTypeOf(const Args& info) { return Napi::String::New(info.Env(), DTypeName(T(info, 0).scalar_type())); }
Napi::Value DeviceOf(const Args& info) { return Napi::String::New(info.Env(), DevName(T(info, 0).device())); }
Napi::Value Numel(const Args& info) { return Napi::Number::New(info.Env(), double(T(info, 0).numel())); }

// Disposed handles answer false instead of throwing: the TS side asks before using one.
Napi::Value IsLive(const Args& info) {
  return Napi::Boolean::New(info.Env(), IsDefinedHandle(info[0]));
}

Napi::Value Dispose(const Args& info) {
  Release(info[0]);
  return info.Env().Undefined();
}

Napi::Value LiveTensors(const Args& info) { return Napi::Number::New(info.Env(), double(g_live.load())); }

// to(t, dtype?, device?, copy?)
Napi::Value To(const Args& info) {
  const at::Tensor& t = T(info, 0);
  at::ScalarType dtype = Present(info, 1) ? DType(Str(info, 1)) : t.scalar_type();
  at::Device device = Present(info, 2) ? Dev(Str(info, 2)) : t.device();
  bool copy = Present(info, 3) && Bool(info, 3);
  return Wrap(info.Env(), t.to(device, dtype, /*non_blocking=*/false, copy));
}

Napi::Value Clone(const Args& info) { return Wrap(info.Env(), T(info, 0).clone()); }
Napi::Value Detach(const Args& info) { return Wrap(info.Env(), T(info, 0).detach()); }
Napi::Value Contiguous(const Args& info) { return Wrap(info.Env(), T(info, 0).contiguous()); }

Napi::Value Empty(const Args& info) { return Wrap(info.Env(), at::empty(Ints(info, 0), Opts(info, 1))); }
Napi::Value Zeros(const Args& info) { return Wrap(info.Env(), at::zeros(Ints(info, 0), Opts(info, 1))); }
Napi::Value Ones(const Args& info) { return Wrap(info.Env(), at::ones(Ints(info, 0), Opts(info, 1))); }
// full(shape, value, dtype?, device?)
Napi::Value Full(const Args& info) {
  return Wrap(info.Env(), at::full(Ints(info, 0), ScalarArg(info, 1), Opts(info, 2)));
}
// arange(start, end, step, dtype?, device?)
Napi::Value Arange(const Args& info) {
  return Wrap(info.Env(), at::arange(ScalarArg(info, 0), ScalarArg(info, 1), ScalarArg(info, 2), Opts(info, 3, at::kLong)));
}
// linspace(start, end, steps, dtype?, device?)
Napi::Value Linspace(const Args& info) {
  return Wrap(info.Env(), at::linspace(Num(info, 0), Num(info, 1), Int(info, 2), Opts(info, 3)));
}
Napi::Value Rand(const Args& info) { return Wrap(info.Env(), at::rand(Ints(info, 0), Opts(info, 1))); }
Napi::Value Randn(const Args& info) { return Wrap(info.Env(), at::randn(Ints(info, 0), Opts(info, 1))); }
// randint(low, high, shape, dtype?, device?)
Napi::Value Randint(const Args& info) {
  return Wrap(info.Env(), at::randint(Int(info, 0), Int(info, 1), Ints(info, 2), Opts(info, 3, at::kLong)));
}
Napi::Value Randperm(const Args& info) { return Wrap(info.Env(), at::randperm(Int(info, 0), Opts(info, 1, at::kLong))); }
Napi::Value ManualSeed(const Args& info) {
  at::manual_seed(static_cast<uint64_t>(Int(info, 0)));
  return info.Env().Undefined();
}

// inplace(op, t, a?, b?): the few in-place updates augmentation and optimisers need.
Napi::Value Inplace(const Args& info) {
  std::string op = Str(info, 0);
  at::Tensor t = T(info, 1);
  if (op == "add") t.add_(TOrScalar(info, 2));
  else if (op == "sub") t.sub_(TOrScalar(info, 2));
  else if (op == "mul") t.mul_(TOrScalar(info, 2));
  else if (op == "div") t.div_(TOrScalar(info, 2));
  else if (op == "copy") t.copy_(T(info, 2));
  else if (op == "fill") t.fill_(ScalarArg(info, 2));
  else if (op == "zero") t.zero_();
  else if (op == "clamp") t.clamp_(Present(info, 2) ? c10::optional<at::Scalar>(ScalarArg(info, 2)) : c10::nullopt,
                                   Present(info, 3) ? c10::optional<at::Scalar>(ScalarArg(info, 3)) : c10::nullopt);
  else if (op == "uniform") t.uniform_(Num(info, 2), Num(info, 3));
  else if (op == "normal") t.normal_(Num(info, 2), Num(info, 3));
  else if (op == "bernoulli") t.bernoulli_(Num(info, 2));
  else throw std::invalid_argument("unknown in-place op '" + op + "'");
  return info.Env().Undefined();
}

}  // namespace

void RegisterTensor(Napi::Env env, Napi::Object exports) {
  Export<FromArray>(env, exports, "fromArray");
  Export<Data>(env, exports, "data");
  Export<Item>(env, exports, "item");
  Export<Shape>(env, exports, "shape");
  Export<DTypeOf>(env, exports, "dtype");
  Export<DeviceOf>(env, exports, "device");
  Export<Numel>(env, exports, "numel");
  Export<IsLive>(env, exports, "isLive");
  Export<Dispose>(env, exports, "dispose");
  Export<LiveTensors>(env, exports, "liveTensors");
  Export<To>(env, exports, "to");
  Export<Clone>(env, exports, "clone");
  Export<Detach>(env, exports, "detach");
  Export<Contiguous>(env, exports, "contiguous");
  Export<Empty>(env, exports, "empty");
  Export<Zeros>(env, exports, "zeros");
  Export<Ones>(env, exports, "ones");
  Export<Full>(env, exports, "full");
  Export<Arange>(env, exports, "arange");
  Export<Linspace>(env, exports, "linspace");
  Export<Rand>(env, exports, "rand");
  Export<Randn>(env, exports, "randn");
  Export<Randint>(env, exports, "randint");
  Export<Randperm>(env, exports, "randperm");
  Export<ManualSeed>(env, exports, "manualSeed");
  Export<Inplace>(env, exports, "inplace");
}

}  // namespace nt
