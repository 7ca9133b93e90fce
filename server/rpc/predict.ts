// nnunet.v1.InferenceService.Predict: header → admission (bounded queue, RESOURCE_EXHAUSTED past
// it) → input spooled to a per-call temporary folder → a run slot → the cached model → the
// predictor (preprocessing, sliding window over the folds, export) → geometry, segmentation
// (.nii.gz) and probabilities (.npz) streamed back in chunks with back-pressure.
// Preprocessing and export (with the encoding of the outputs) run in the worker pool
// (inference/case-work.ts, NNUNET_PREPROCESS_WORKERS) and the network in the folds' onnxruntime
// threads (inference/onnx-thread.ts), so the event loop stays free for health checks and other
// calls. A client that goes away stops the work: a stage in a worker is aborted, the sliding
// window stops between tiles.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { CaseWork } from '../inference/case-work.js';
import { predictCase } from '../inference/predictor.js';
import { dicomZipToNifti, predictionToSeg, seriesToNifti } from '../io/dicom/case.js';
import type { Admission } from './admission.js';
import { callLogger, type RpcContext } from './context.js';
import { CallCancelledError, RpcError, toServiceError } from './errors.js';
import type { ModelCache } from './model-cache.js';
import { planPredict, pullDicomWebSeries, spoolChannels, storeDicomWebSeg, type PredictHeader, type VolumeChunk } from './predict-input.js';
import { whenCancelled } from './upload.js';

interface PredictRequest {
  payload?: 'header' | 'chunk';
  header?: PredictHeader | null;
  chunk?: VolumeChunk | null;
}

type Duplex = grpc.ServerDuplexStream<PredictRequest, object>;

const PROGRESS_INTERVAL_MS = 250;
const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Writes one message, waiting for 'drain' when the transport's buffer is full. */
async function send(call: Duplex, message: object, cancelled: Promise<never>): Promise<void> {
  if (call.cancelled) throw new CallCancelledError();
  if (!call.write(message)) await Promise.race([once(call, 'drain'), cancelled]);
}

async function sendOutput(call: Duplex, output: string, bytes: Uint8Array, chunkSize: number, cancelled: Promise<never>, ctx: RpcContext): Promise<void> {
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    const data = bytes.subarray(offset, Math.min(bytes.length, offset + chunkSize));
    await send(call, { chunk: { output, offset, data } }, cancelled);
    ctx.metrics.sentBytes.inc({ grpc_method: 'Predict' }, data.length);
  }
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function runPredict(ctx: RpcContext, cache: ModelCache, admission: Admission, work: CaseWork, call: Duplex): Promise<void> {
  const log = callLogger(ctx, call, 'Predict');
  const cancel = whenCancelled(call);
  // destroyOnReturn false: the default iterator destroys the whole duplex stream once the client
  // half-closes, and our replies would never be written.
  const iterator = call.iterator({ destroyOnReturn: false }) as AsyncIterator<PredictRequest>;
  const next = () => Promise.race([iterator.next(), cancel.promise]);
  let dir: string | undefined;
  const ticket = await (async () => {
    const first = await next();
    if (first.done || first.value.payload !== 'header' || !first.value.header) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'the first message must be the header', 'header');
    const plan = planPredict(first.value.header, ctx.config);
    const t = admission.tryAdmit();
    if (!t) {
      ctx.metrics.predictionsRejected.inc();
      const retry = admission.retryAfterMs();
      throw new RpcError(
        grpc.status.RESOURCE_EXHAUSTED,
        `the server is busy: ${admission.running} prediction(s) running and ${admission.queued} waiting (limits: NNUNET_MAX_CONCURRENT_PREDICTIONS=${admission.maxRunning}, NNUNET_MAX_QUEUED_PREDICTIONS=${admission.maxQueued}); retry in about ${Math.ceil(retry / 1000)} s`,
        undefined,
        retry,
      );
    }
    return { ticket: t, plan };
  })();
  const { plan } = ticket;
  try {
    await mkdir(ctx.config.tmpDir, { recursive: true });
    dir = await mkdtemp(join(ctx.config.tmpDir, 'nnunet-predict-'));
    const files = await spoolChannels(next, plan, dir, ctx.metrics);
    // DICOM input (zipped, or pulled from the PACS) becomes the one NIfTI channel the predictor reads.
    const dicomOptions = { seriesInstanceUID: plan.dicom?.seriesInstanceUID, maxVoxels: ctx.config.maxVoxels, forSeg: plan.wantDicomSeg };
    const dicom = plan.dicomweb
      ? await seriesToNifti(await pullDicomWebSeries(plan, ctx.config), dir, dicomOptions)
      : plan.dicom
        ? await dicomZipToNifti(files[0], dir, { maxBytes: ctx.config.maxUploadBytes }, dicomOptions)
        : undefined;

    const queuedAt = performance.now();
    if (admission.running >= admission.maxRunning) await send(call, { progress: { stage: 'PREDICT_STAGE_QUEUED', done: 0, total: 0 } }, cancel.promise);
    await Promise.race([ticket.ticket.run(), cancel.promise]);
    const queueSeconds = seconds(queuedAt);

    if (!cache.has(plan.model.folder, plan.folds)) await send(call, { progress: { stage: 'PREDICT_STAGE_LOADING_MODEL', done: 0, total: 0 } }, cancel.promise);
    const lease = await cache.acquire(plan.model.folder, plan.folds);
    let lastProgress = 0;
    let prediction;
    const abort = new AbortController();
    const onCancelled = () => abort.abort(new CallCancelledError());
    call.once('cancelled', onCancelled);
    if (call.cancelled) onCancelled(); // the client left while the model was loading
    try {
      prediction = await predictCase(lease.model, dicom ? [dicom.niftiFile] : files, {
        stepSize: plan.stepSize,
        mirroring: plan.mirroring,
        saveProbabilities: plan.wantProbabilities,
        work,
        encode: { segmentation: plan.wantSegmentation, probabilities: plan.wantProbabilities },
        signal: abort.signal,
        onProgress: (done, total) => {
          // Throwing here stops the sliding window between tiles.
          if (call.cancelled) throw new CallCancelledError();
          const now = performance.now();
          if (done === total || now - lastProgress >= PROGRESS_INTERVAL_MS) {
            lastProgress = now;
            call.write({ progress: { stage: 'PREDICT_STAGE_PREDICTING', done, total } });
          }
        },
      });
    } finally {
      call.removeListener('cancelled', onCancelled);
      lease.release();
    }
    const p = prediction;
    const { segmentation, probabilities } = p.encoded;
    // The model's work is done: let the next call run while this one streams its outputs.
    ticket.ticket.release();
    const modelName = `${plan.model.dataset}/${plan.model.trainer}__${plan.model.plans}__${plan.model.configuration}`;
    const dicomSeg = plan.wantDicomSeg && dicom ? predictionToSeg(p.segmentation, p.reference, dicom.series, lease.model.datasetJson.labels, modelName) : undefined;
    const exportSeconds = p.timings.exportS;
    const voxels = p.reference.shape[0] * p.reference.shape[1] * p.reference.shape[2];
    ctx.metrics.inferenceSeconds.observe({ stage: 'preprocess' }, p.timings.readS + p.timings.preprocessS);
    ctx.metrics.inferenceSeconds.observe({ stage: 'predict' }, p.timings.predictS);
    ctx.metrics.inferenceSeconds.observe({ stage: 'export' }, exportSeconds);
    ctx.metrics.inferenceVoxels.inc(voxels);

    await send(call, { progress: { stage: 'PREDICT_STAGE_EXPORTING', done: 1, total: 1 } }, cancel.promise);
    const labels = Object.entries(lease.model.datasetJson.labels).map(([name, v]) => ({ name, values: Array.isArray(v) ? v : [v] }));
    await send(
      call,
      {
        geometry: {
          shape: [...p.reference.shape].reverse(),
          spacing: [...p.reference.spacing].reverse(),
          affine: p.reference.affine.flat(),
          labels,
          segmentation_size_bytes: segmentation?.length ?? 0,
          probabilities_size_bytes: probabilities?.length ?? 0,
          dicom_seg_size_bytes: dicomSeg?.bytes.length ?? 0,
        },
      },
      cancel.promise,
    );
    if (segmentation) await sendOutput(call, 'PREDICT_OUTPUT_SEGMENTATION', segmentation, ctx.config.chunkSizeBytes, cancel.promise, ctx);
    if (probabilities) await sendOutput(call, 'PREDICT_OUTPUT_PROBABILITIES', probabilities, ctx.config.chunkSizeBytes, cancel.promise, ctx);
    if (dicomSeg) await sendOutput(call, 'PREDICT_OUTPUT_DICOM_SEG', dicomSeg.bytes, ctx.config.chunkSizeBytes, cancel.promise, ctx);
    if (dicomSeg && plan.dicomweb?.storeSeg) await storeDicomWebSeg(plan, ctx.config, dicomSeg.bytes);
    const summary = {
      segmentation_sha256: segmentation ? sha256(segmentation) : '',
      probabilities_sha256: probabilities ? sha256(probabilities) : '',
      queue_seconds: queueSeconds,
      preprocess_seconds: p.timings.readS + p.timings.preprocessS,
      predict_seconds: p.timings.predictS,
      export_seconds: exportSeconds,
      voxels,
      dicom_seg_sha256: dicomSeg ? sha256(dicomSeg.bytes) : '',
      dicom_seg_sop_instance_uid: dicomSeg?.sopInstanceUID ?? '',
      dicom_seg_series_instance_uid: dicomSeg?.seriesInstanceUID ?? '',
      dicom_seg_stored: Boolean(dicomSeg && plan.dicomweb?.storeSeg),
    };
    await send(call, { summary }, cancel.promise);
    call.end();
    log.info({ event: 'predicted', model: `${plan.model.dataset}/${plan.model.trainer}__${plan.model.plans}__${plan.model.configuration}`, ...summary }, 'prediction sent');
  } finally {
    ticket.ticket.release();
    cancel.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

export function inferenceService(ctx: RpcContext, cache: ModelCache, admission: Admission, work: CaseWork): grpc.UntypedServiceImplementation {
  return {
    Predict: (call: Duplex) => {
      runPredict(ctx, cache, admission, work, call).catch((err: unknown) => {
        if (err instanceof CallCancelledError || call.cancelled) {
          callLogger(ctx, call, 'Predict').info({ event: 'predict_cancelled' }, 'client went away: prediction stopped');
          return;
        }
        const status = toServiceError(err);
        if (status.code === grpc.status.INTERNAL) callLogger(ctx, call, 'Predict').error({ err }, 'prediction failed');
        call.emit('error', status);
      });
    },
  };
}
