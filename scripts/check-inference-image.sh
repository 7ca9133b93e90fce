#!/usr/bin/env bash
# Runs the Dockerfile's `inference` target on this Debian 12 + Node 20 machine, step for step,
# without Docker: the committed tree is copied (as a clean build context), the build stage's
# commands compile it, the inference stage's commands install production dependencies (no install
# scripts but better-sqlite3's, so no libtorch binding) into a separate folder with dist/, protos/
# and models/, and the image's CMD (`node dist/server/main.js`, what `npm start` runs) starts the
# server there. Then it checks what the image promises: health SERVING on the plaintext health
# port, no libtorch engine reported, a model installed and a case segmented on onnxruntime, and
# SIGTERM draining the server to exit 0. Last, it shows why the CMD is not `npm start`: npm does
# not pass SIGTERM on to the server (which keeps running, orphaned, until it is killed).
# Usage: bash scripts/check-inference-image.sh   (about 3-5 minutes on 2 cores; needs the npm registry)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
SHARED=${NNUNET_SHARED_DIR:-$REPO/../shared}
WORK=$(mktemp -d /tmp/nnunet-inference-image-XXXXXX)
SERVER_PID=""
ORPHAN_PID=""
cleanup() {
  for p in $SERVER_PID $ORPHAN_PID; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { echo "check-inference-image: $*"; }

step "build context: the committed tree (git archive HEAD) in $WORK/context"
mkdir -p "$WORK/context" "$WORK/app" "$WORK/data" "$WORK/models"
git archive HEAD | tar -x -C "$WORK/context"

step "build stage: npm ci --ignore-scripts && npm run build"
(cd "$WORK/context" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run build --silent)

step "inference stage: npm ci --omit=dev --ignore-scripts && npm rebuild better-sqlite3"
cp "$WORK/context/package.json" "$WORK/context/package-lock.json" "$WORK/app/"
(cd "$WORK/app" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error && npm rebuild better-sqlite3 --loglevel=error)
cp -r "$WORK/context/dist" "$WORK/context/protos" "$WORK/context/models" "$WORK/app/"
if [ -e "$WORK/app/server/native" ] || [ -e "$WORK/app/node_modules/typescript" ]; then
  echo "check-inference-image: the inference folder has the binding or dev dependencies" >&2
  exit 1
fi

# The image's environment; the server's own pid is the one signalled, as in a container.
start_server() { # $1: log file; the rest: the command
  local log=$1
  shift
  (cd "$WORK/app" && exec env NODE_ENV=production NNUNET_HOME="$WORK/data" nnUNet_results="$WORK/models" NNUNET_HOST=127.0.0.1 \
    NNUNET_PORT=0 NNUNET_HEALTH_PORT=0 NNUNET_METRICS_PORT=0 NNUNET_BUNDLED_MODELS=none NNUNET_SHUTDOWN_GRACE_SECONDS=30 \
    "$@" >"$log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    grep -q '"event":"listening"' "$log" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "check-inference-image: the server exited before listening" >&2; exit 1; }
    sleep 0.1
  done
  cat "$log" >&2
  echo "check-inference-image: no \"listening\" within 60 s" >&2
  exit 1
}

step "the image's CMD: node dist/server/main.js"
LOG="$WORK/server.log"
start_server "$LOG" node dist/server/main.js

step "checks through gRPC (the installed package's own SDK and grpc-health-check)"
(cd "$WORK/app" && LOG="$LOG" MODEL_ZIP="$SHARED/fixtures/nnunetv2_model/hippo_small_nnunetv2.zip" \
  CASE="$SHARED/data/Dataset004_Hippocampus/imagesTr/hippocampus_001_0000.nii.gz" OUT="$WORK/out.nii.gz" node --input-type=module -e '
import { readFileSync, existsSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath } from "grpc-health-check";
import { NnunetClient } from "./dist/client/sdk/index.js";
const listening = readFileSync(process.env.LOG, "utf8").split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return {}; } }).find((l) => l.event === "listening");
const fail = (m) => { console.error(`check-inference-image: ${m}`); process.exit(1); };
const Health = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })).grpc.health.v1.Health;
const health = new Health(`127.0.0.1:${listening.healthPort}`, grpc.credentials.createInsecure());
const status = await new Promise((res, rej) => health.Check({ service: "" }, (e, r) => (e ? rej(e) : res(r.status))));
health.close();
if (status !== "SERVING") fail(`health on the plaintext port is ${status}`);
console.log(`  health port ${listening.healthPort}: SERVING`);
const client = new NnunetClient({ address: `127.0.0.1:${listening.grpcPort}` });
const info = await client.serverInfo();
const engines = JSON.stringify(info);
if (engines.includes("libtorch")) fail(`the server reports a libtorch engine: ${engines}`);
if (!engines.includes("onnxruntime-cpu")) fail(`the server reports no onnxruntime engine: ${engines}`);
console.log("  GetServerInfo: onnxruntime-cpu, no libtorch");
if (existsSync(process.env.MODEL_ZIP) && existsSync(process.env.CASE)) {
  await client.installModel(process.env.MODEL_ZIP);
  const r = await client.predictFile([process.env.CASE], process.env.OUT, { model: { dataset: "104", model_folder: "nnUNetTrainer_RefSmall__nnUNetPlansSmall__3d_fullres" }, mirroring: false });
  if (!(r.summary.voxels > 0)) fail("the prediction returned no voxels");
  console.log(`  InstallModel + Predict on onnxruntime: ${r.summary.voxels} voxels segmented`);
} else {
  console.log("  (no fixture model in ../shared: InstallModel + Predict skipped)");
}
client.close();
')

step "SIGTERM: the server drains and exits 0"
kill -TERM "$SERVER_PID"
code=0
wait "$SERVER_PID" || code=$?
SERVER_PID=""
grep -q '"event":"draining"' "$LOG" || { cat "$LOG" >&2; echo "check-inference-image: SIGTERM did not reach the server (no draining)" >&2; exit 1; }
[ "$code" -eq 0 ] || { cat "$LOG" >&2; echo "check-inference-image: exit code $code after SIGTERM" >&2; exit 1; }

step "why not npm start: SIGTERM to npm (npm $(npm --version))"
NPM_LOG="$WORK/npm-start.log"
start_server "$NPM_LOG" npm start --silent
NPM_PID=$SERVER_PID
# The server npm started (through sh): the node process running in this folder.
for p in $(pgrep -f '^node dist/server/main.js$'); do
  [ "$(readlink "/proc/$p/cwd")" = "$WORK/app" ] && ORPHAN_PID=$p
done
kill -TERM "$NPM_PID"
wait "$NPM_PID" || true
SERVER_PID=""
sleep 2
if grep -q '"event":"draining"' "$NPM_LOG"; then
  echo "  this npm passed SIGTERM on (the server drained); the CMD runs node directly all the same"
elif [ -n "$ORPHAN_PID" ] && kill -0 "$ORPHAN_PID" 2>/dev/null; then
  echo "  npm exited at once; the server (pid $ORPHAN_PID) never saw SIGTERM and kept running: the CMD must not be npm start"
else
  echo "  npm exited and took the server with it without a drain: the CMD must not be npm start"
fi
step "ok"
