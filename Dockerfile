# First version of the image: Debian 12 + Node 20, CPU libtorch from Debian, the server as entry point.
# A later step adds the CUDA (GPU) image and an inference-only target without libtorch.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 libtorch-dev libopenblas0-pthread \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY server ./server
COPY client ./client
COPY protos ./protos
COPY models ./models
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtorch1.13 libopenblas0-pthread \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app /app
ENV NNUNET_HOME=/data NNUNET_HOST=0.0.0.0 NNUNET_PORT=50051 NNUNET_METRICS_PORT=9464
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 50051 9464
CMD ["npm", "start"]
