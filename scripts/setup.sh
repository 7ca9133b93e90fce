#!/usr/bin/env bash
# Sets up nnunet-server on Debian 12 with Node 20: system packages, npm dependencies, build.
# Idempotent; run as root (or with sudo available). Used by the README quickstart and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build and the tests use:
#   libtorch-dev, libopenblas0-pthread  the training engine (native binding over libtorch)
#   postgresql                          the multi-replica job store's tests (a private cluster on loopback)
#   orthanc, orthanc-dicomweb           a real PACS for the DICOMweb round-trip test
#   dcm2niix, dicom3tools               DICOM geometry oracle and DICOM SEG validator (dciodvfy) in tests
#   python3-numpy, python3-scipy        tests cross-check .npy/.npz files and resampling with numpy/scipy
#   python3-torch                       tests read checkpoints against PyTorch; benchmark baselines
#   g++ make python3                    node-gyp builds the binding
PACKAGES=(g++ make python3 python3-numpy python3-scipy python3-torch libtorch-dev libopenblas0-pthread postgresql orthanc orthanc-dicomweb dcm2niix dicom3tools)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# onnxruntime-node's CPU binaries ship inside the npm package; skip its optional download step.
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund
npm run build
echo "setup: done"
