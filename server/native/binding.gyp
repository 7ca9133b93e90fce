# nnunet_torch: a thin N-API binding over libtorch (tensors, ops, autograd, SGD step).
# Where libtorch lives, its C++ ABI and whether it has CUDA come from torch-config.mjs
# (LIBTORCH_DIR, else Debian's libtorch-dev); build through scripts/build-native.mjs.
{
  "targets": [
    {
      "target_name": "nnunet_torch",
      "sources": [
        "src/addon.cc",
        "src/tensor.cc",
        "src/shape.cc",
        "src/math.cc",
        "src/nn.cc",
        "src/autograd.cc",
        "src/optim.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "<!@(node torch-config.mjs defines)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O3"],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions",
        "-frtti",
        "-O2",
        "-Wno-unused-parameter",
        "<!@(node torch-config.mjs cflags)"
      ],
      "ldflags": ["<!@(node torch-config.mjs ldflags)"],
      "libraries": ["<!@(node torch-config.mjs libraries)"]
    }
  ]
}
