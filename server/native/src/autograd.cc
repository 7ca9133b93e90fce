// Autograd (requires_grad, backward, .grad, grad mode), autocast, threads and devices.
// CUDA memory queries compile only where the CUDA runtime headers were found
// (NNUNET_CUDA_HEADERS, set by binding.gyp); elsewhere they answer null.
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/cuda.h>
#include <torch/version.h>

#ifdef NNUNET_CUDA_HEADERS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace nt {
namespace {

Napi::Value RequiresGrad(const Args& info) { return Napi::Boolean::New(info.Env(), T(info, 0).requires_grad()); }

Napi::Value SetRequiresGrad(const Args& info) {
  T(info, 0).set_requires_grad(Bool(info, 1));
  return info.Env().Undefined();
}

Napi::Value IsLeaf(const Args& info) { return Napi::Boolean::New(info.Env(), T(info, 0).is_leaf()); }

// backward(t, grad?, retainGraph)
Napi::Value Backward(const Args& info) {
  auto grad = OptT(info, 1);
  c10::optional<bool> retain = Present(info, 2) ? c10::optional<bool>(Bool(info, 2)) : c10::nullopt;
  T(info, 0).backward(grad.value_or(at::Tensor()), retain, /*create_graph=*/false);
  return info.Env().Undefined();
}

// grad(t): the accumulated gradient (shares storage with it), or null.
Napi::Value Grad(const Args& info) {
  const at::Tensor& g = T(info, 0).grad();
  if (!g.defined()) return info.Env().Null();
  return Wrap(info.Env(), g);
}

// setGrad(t, g?): replaces the gradient (null clears it), as assigning p.grad in PyTorch.
Napi::Value SetGrad(const Args& info) {
  at::Tensor t = T(info, 0);
  t.mutable_grad() = Present(info, 1) ? T(info, 1) : at::Tensor();
  return info.Env().Undefined();
}

// zeroGrad(params[], setToNone)
Napi::Value ZeroGrad(const Args& info) {
  bool none = !Present(info, 1) || Bool(info, 1);
  for (at::Tensor p : TList(info, 0)) {
    at::Tensor& g = p.mutable_grad();
    if (!g.defined()) continue;
    if (none) {
      g = at::Tensor();
    } else {
      if (g.grad_fn()) g = g.detach();
      else g.requires_grad_(false);
      g.zero_();
    }
  }
  return info.Env().Undefined();
}

Napi::Value GradEnabled(const Args& info) { return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled()); }

Napi::Value SetGradEnabled(const Args& info) {
  c10::GradMode::set_enabled(Bool(info, 0));
  return info.Env().Undefined();
}

c10::DispatchKey AutocastKey(const std::string& device) {
  if (device == "cuda") return c10::DispatchKey::AutocastCUDA;
  if (device == "cpu") return c10::DispatchKey::AutocastCPU;
  throw std::invalid_argument("autocast: device must be cuda or cpu");
}

// Autocast is a thread-local dispatch key; toggling its exclusion is what
// at::autocast::set_enabled does in 1.x and set_autocast_enabled in 2.x.
Napi::Value AutocastEnabled(const Args& info) {
  return Napi::Boolean::New(info.Env(), !c10::impl::tls_is_dispatch_key_excluded(AutocastKey(Str(info, 0))));
}

Napi::Value SetAutocastEnabled(const Args& info) {
  c10::impl::tls_set_dispatch_key_excluded(AutocastKey(Str(info, 0)), !Bool(info, 1));
  return info.Env().Undefined();
}

Napi::Value AutocastClearCache(const Args& info) {
  at::autocast::clear_cache();
  return info.Env().Undefined();
}

Napi::Value SetNumThreads(const Args& info) {
  at::set_num_threads(static_cast<int>(Int(info, 0)));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Args& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Value CudaAvailable(const Args& info) { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); }

Napi::Value CudaDeviceCount(const Args& info) {
  return Napi::Number::New(info.Env(), double(torch::cuda::device_count()));
}

Napi::Value CudaSynchronize(const Args& info) {
  if (torch::cuda::is_available()) torch::cuda::synchronize(Present(info, 0) ? Int(info, 0) : -1);
  return info.Env().Undefined();
}

Napi::Value SetCudnnBenchmark(const Args& info) {
  at::globalContext().setBenchmarkCuDNN(Bool(info, 0));
  return info.Env().Undefined();
}

// cudaMemory(device): {allocated, reserved, maxAllocated, maxReserved} bytes, or null.
Napi::Value CudaMemory(const Args& info) {
#ifdef NNUNET_CUDA_HEADERS
  if (!torch::cuda::is_available()) return info.Env().Null();
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<int>(Present(info, 0) ? Int(info, 0) : 0));
  auto obj = Napi::Object::New(info.Env());
  // Index 0 is StatType::AGGREGATE in every libtorch version.
  obj.Set("allocated", double(stats.allocated_bytes[0].current));
  obj.Set("reserved", double(stats.reserved_bytes[0].current));
  obj.Set("maxAllocated", double(stats.allocated_bytes[0].peak));
  obj.Set("maxReserved", double(stats.reserved_bytes[0].peak));
  return obj;
#else
  return info.Env().Null();
#endif
}

Napi::Value CudaEmptyCache(const Args& info) {
#ifdef NNUNET_CUDA_HEADERS
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  return info.Env().Undefined();
}

Napi::Value BuildInfo(const Args& info) {
  auto obj = Napi::Object::New(info.Env());
  obj.Set("torchVersion", TORCH_VERSION);
#ifdef NNUNET_TORCH_CUDA
  obj.Set("cudaLinked", true);
#else
  obj.Set("cudaLinked", false);
#endif
#ifdef NNUNET_CUDA_HEADERS
  obj.Set("cudaMemoryQueries", true);
#else
  obj.Set("cudaMemoryQueries", false);
#endif
  obj.Set("cxx11Abi", _GLIBCXX_USE_CXX11_ABI == 1);
  return obj;
}

}  // namespace

void RegisterAutograd(Napi::Env env, Napi::Object exports) {
  Export<RequiresGrad>(env, exports, "requiresGrad");
  Export<SetRequiresGrad>(env, exports, "setRequiresGrad");
  Export<IsLeaf>(env, exports, "isLeaf");
  Export<Backward>(env, exports, "backward");
  Export<Grad>(env, exports, "grad");
  Export<SetGrad>(env, exports, "setGrad");
  Export<ZeroGrad>(env, exports, "zeroGrad");
  Export<GradEnabled>(env, exports, "gradEnabled");
  Export<SetGradEnabled>(env, exports, "setGradEnabled");
  Export<AutocastEnabled>(env, exports, "autocastEnabled");
  Export<SetAutocastEnabled>(env, exports, "setAutocastEnabled");
  Export<AutocastClearCache>(env, exports, "autocastClearCache");
  Export<SetNumThreads>(env, exports, "setNumThreads");
  Export<GetNumThreads>(env, exports, "getNumThreads");
  Export<CudaAvailable>(env, exports, "cudaAvailable");
  Export<CudaDeviceCount>(env, exports, "cudaDeviceCount");
  Export<CudaSynchronize>(env, exports, "cudaSynchronize");
  Export<SetCudnnBenchmark>(env, exports, "setCudnnBenchmark");
  Export<CudaMemory>(env, exports, "cudaMemory");
  Export<CudaEmptyCache>(env, exports, "cudaEmptyCache");
  Export<BuildInfo>(env, exports, "buildInfo");
}

}  // namespace nt
