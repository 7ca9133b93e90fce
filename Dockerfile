# nnunet-server images (README "Docker"). Two targets:
#   docker build --target inference -t nnunet-server:inference .   Debian 12 + Node 20, onnxruntime on CPU,
#       no libtorch: serves models; training RPCs answer FAILED_PRECONDITION saying libtorch is missing.
#   docker build --target gpu -t nnunet-server:gpu .               (the default) CUDA runtime + Node 20 +
#       a CUDA libtorch (PyTorch's wheel) for training, onnxruntime-node with its CUDA execution provider.
# Both run as the non-root user nnunet (uid 10001) and keep the data root in /data and the model
# repository in /models (volumes). They start what `npm start` runs, `node dist/server/main.js`,
# as the container's main process and not through npm: npm does not pass SIGTERM on to its
# script (scripts/check-inference-image.sh shows it), so the server would be killed instead of
# draining its calls and checkpointing its training. The inference target's steps are
# run on Debian 12 by scripts/check-inference-image.sh; the gpu target is built only where Docker
# and the CUDA downloads are available (see the README for what was verified how).

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
# The PyTorch wheel whose torch/ folder is the CUDA libtorch the binding links (LIBTORCH_DIR).
ARG TORCH_VERSION=2.5.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu124

# ---- build: compile the TypeScript (dev dependencies); the compiler needs no native addon ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY server ./server
COPY client ./client
RUN npm run build

# ---- inference: CPU inference, no libtorch -----------------------------------------------------
FROM ${NODE_IMAGE} AS inference
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 \
 && groupadd --gid 10001 nnunet && useradd --uid 10001 --gid nnunet --create-home nnunet \
 && mkdir -p /data /models && chown nnunet:nnunet /data /models
COPY package.json package-lock.json ./
# Production dependencies only; install scripts skipped except better-sqlite3's (its prebuilt
# binary, else a compile): the package's own one would build the libtorch binding.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 \
 && npm cache clean --force \
 && apt-get purge -y g++ make python3 && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/dist ./dist
COPY protos ./protos
COPY models ./models
# Predict on the GPU through onnxruntime's CUDA provider (a model that cannot load on it fails with
# a message naming the provider; NNUNET_ONNX_PROVIDERS=cpu runs inference on the CPU instead).
ENV NODE_ENV=production NNUNET_HOME=/data nnUNet_results=/models \
    NNUNET_HOST=0.0.0.0 NNUNET_PORT=50051 NNUNET_HEALTH_PORT=50052 NNUNET_METRICS_PORT=9464 \
    NNUNET_ONNX_PROVIDERS=cuda,cpu
VOLUME ["/data", "/models"]
USER nnunet
EXPOSE 50051 50052 9464
# `npm start` without npm in between (see the top of this file).
CMD ["node", "dist/server/main.js"]

# ---- gpu-build: the same build against a CUDA libtorch, on the runtime's base ------------------
FROM ${NODE_IMAGE} AS node
FROM ${CUDA_IMAGE} AS gpu-base
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
# Node's headers: node-gyp builds the binding against them without downloading.
COPY --from=node /usr/local/include/node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ARG TORCH_VERSION
ARG TORCH_INDEX
RUN python3 -m venv /opt/torch \
 && /opt/torch/bin/pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
# The wheel's torch/ folder is a complete libtorch (include/, lib/, share/cmake) with its CUDA libraries beside it.
RUN ln -s "$(/opt/torch/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" /opt/libtorch
ENV LIBTORCH_DIR=/opt/libtorch

FROM gpu-base AS gpu-build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY server ./server
COPY client ./client
# The CUDA execution provider's libraries come from onnxruntime's release feed at install time.
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN npm ci --no-audit --no-fund \
 && test -f server/native/build/Release/nnunet_torch.node \
 && npm run build \
 && npm prune --omit=dev

# ---- gpu: CUDA runtime, libtorch for training, onnxruntime with CUDA ---------------------------
FROM gpu-base AS gpu
WORKDIR /app
RUN groupadd --gid 10001 nnunet && useradd --uid 10001 --gid nnunet --create-home nnunet \
 && mkdir -p /data /models && chown nnunet:nnunet /data /models
COPY --from=gpu-build /app/package.json /app/package-lock.json ./
COPY --from=gpu-build /app/node_modules ./node_modules
COPY --from=gpu-build /app/dist ./dist
COPY --from=gpu-build /app/server/native/build/Release/nnunet_torch.node ./server/native/build/Release/nnunet_torch.node
COPY protos ./protos
COPY models ./models
ENV NODE_ENV=production NNUNET_HOME=/data nnUNet_results=/models \
    NNUNET_HOST=0.0.0.0 NNUNET_PORT=50051 NNUNET_HEALTH_PORT=50052 NNUNET_METRICS_PORT=9464
VOLUME ["/data", "/models"]
USER nnunet
EXPOSE 50051 50052 9464
# `npm start` without npm in between (see the top of this file).
CMD ["node", "dist/server/main.js"]
