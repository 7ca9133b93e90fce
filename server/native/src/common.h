// Shared helpers for the binding: tensor handles (N-API externals owning an at::Tensor),
// argument conversion, and the guard that turns C++ exceptions (c10::Error included) into
// JS errors so a bad shape never aborts the process.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>

#include <atomic>
#include <string>
#include <vector>

namespace nt {

// Native tensors currently owned by a JS handle that was neither disposed nor collected.
extern std::atomic<int64_t> g_live;

using Args = Napi::CallbackInfo;

Napi::Value Wrap(Napi::Env env, at::Tensor t);
bool IsHandle(const Napi::Value& v);
bool IsDefinedHandle(const Napi::Value& v);
const at::Tensor& T(const Args& info, size_t i);
const at::Tensor& TensorOf(Napi::Env env, const Napi::Value& v);
c10::optional<at::Tensor> OptT(const Args& info, size_t i);
// A tensor, or a JS number/boolean as a wrapped scalar (promotes like a Python number).
at::Tensor TOrScalar(const Args& info, size_t i);
std::vector<at::Tensor> TList(const Args& info, size_t i);
void Release(const Napi::Value& handle);

bool Present(const Args& info, size_t i);
int64_t Int(const Args& info, size_t i);
double Num(const Args& info, size_t i);
bool Bool(const Args& info, size_t i);
std::string Str(const Args& info, size_t i);
std::vector<int64_t> Ints(const Args& info, size_t i);
c10::optional<std::vector<int64_t>> OptInts(const Args& info, size_t i);
c10::optional<double> OptNum(const Args& info, size_t i);
at::Scalar ScalarArg(const Args& info, size_t i);

at::ScalarType DType(const std::string& name);
std::string DTypeName(at::ScalarType t);
at::Device Dev(const std::string& name);
std::string DevName(const at::Device& d);
// Factory options from (dtype, device) arguments at i, i+1; either may be omitted.
at::TensorOptions Opts(const Args& info, size_t i, at::ScalarType fallback = at::kFloat);

Napi::Array ToArray(Napi::Env env, at::IntArrayRef v);

using Fn = Napi::Value (*)(const Args&);

template <Fn F>
Napi::Value Guard(const Args& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

template <Fn F>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<Guard<F>>(env, name));
}

void RegisterTensor(Napi::Env env, Napi::Object exports);
void RegisterShape(Napi::Env env, Napi::Object exports);
void RegisterMath(Napi::Env env, Napi::Object exports);
void RegisterNn(Napi::Env env, Napi::Object exports);
void RegisterAutograd(Napi::Env env, Napi::Object exports);
void RegisterOptim(Napi::Env env, Napi::Object exports);

}  // namespace nt
