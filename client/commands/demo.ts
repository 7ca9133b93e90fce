// `nnunet demo`: segments the sample that ships with the bundled demo model (models/demo: a small
// 3d_fullres U-Net trained by this project on the Hippocampus MRI dataset) through a server, writes
// the segmentation, and compares it with the sample's reference labels. It is the first thing a new
// user runs (`npm run demo`), so it checks the whole path: server start, model repository, Predict
// streaming in and out, export to the input's geometry.
//
// Like every server command it uses `--server`/NNUNET_SERVER when given (a server started with
// `npm start` installs the demo model at start), else an embedded server in this process.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { projectRoot } from '../../server/config.js';
import { computeCaseMetrics } from '../../server/evaluation/metrics.js';
import { readNifti } from '../../server/io/nifti.js';
import { SERVER_OPTIONS, withConnection } from '../connection.js';
import type { ModelRef } from '../sdk/index.js';
import { EXIT, type Command } from './types.js';

/** The bundled model and its sample case (models/demo/README.md says how it was trained). */
export const DEMO = {
  model: { dataset: 'Dataset004_Hippocampus', trainer: 'nnUNetTrainer', plans: 'nnUNetDemoPlans', configuration: '3d_fullres' } satisfies ModelRef,
  folds: ['0'],
  caseId: 'hippocampus_004',
  labels: { 1: 'anterior', 2: 'posterior' } as Record<number, string>,
};

export function demoSample(root = projectRoot()): { image: string; reference: string } {
  const dir = join(root, 'models', 'demo', 'sample');
  return { image: join(dir, 'imagesTs', `${DEMO.caseId}_0000.nii.gz`), reference: join(dir, 'labelsTs', `${DEMO.caseId}.nii.gz`) };
}

export const demoCommand: Command = {
  spec: {
    name: 'demo',
    summary: 'segment the bundled sample with the bundled demo model through the server and report its Dice',
    description:
      'Predicts models/demo/sample/imagesTs (a Hippocampus MRI crop, not used in training) with the bundled demo model ' +
      '(Dataset004_Hippocampus, nnUNetTrainer__nnUNetDemoPlans__3d_fullres, fold 0), writes OUTPUT/hippocampus_004.nii.gz ' +
      'and prints the Dice of each label against the reference segmentation.',
    options: [{ flags: ['-o'], dest: 'output', default: 'demo_output', help: 'output folder', metavar: 'OUTPUT' }, ...SERVER_OPTIONS],
  },
  async run(args, io) {
    const sample = demoSample();
    if (!existsSync(sample.image)) {
      io.stderr(`nnunet demo: the sample ${sample.image} is missing from this installation`);
      return EXIT.failed;
    }
    const output = String(args.output);
    const segmentation = join(output, `${DEMO.caseId}.nii.gz`);
    return withConnection(args, io, async ({ client, address, embedded }, signal) => {
      try {
        await client.getModel(DEMO.model);
      } catch (err) {
        if ((err as grpc.ServiceError).code !== grpc.status.NOT_FOUND) throw err;
        io.stderr(
          `nnunet demo: the server at ${address} has no demo model (${DEMO.model.dataset}/${DEMO.model.trainer}__${DEMO.model.plans}__${DEMO.model.configuration}). ` +
            'A server copies it into its model repository at start unless NNUNET_BUNDLED_MODELS=none, or unless the repository holds another dataset with id 4.',
        );
        return EXIT.failed;
      }
      mkdirSync(output, { recursive: true });
      io.stderr(`segmenting ${sample.image} with the demo model through ${embedded ? 'an embedded server' : address}`);
      const started = performance.now();
      const result = await client.predictFile([sample.image], segmentation, { model: DEMO.model, folds: DEMO.folds, signal });
      const seconds = (performance.now() - started) / 1000;
      const [predicted, reference] = await Promise.all([readNifti(segmentation), readNifti(sample.reference)]);
      const metrics = computeCaseMetrics(reference.data, predicted.data, [1, 2]);
      io.stdout(`wrote ${segmentation} (${result.geometry.shape.join('×')} voxels) in ${seconds.toFixed(1)} s`);
      for (const [label, name] of Object.entries(DEMO.labels)) {
        const m = metrics.get(label)!;
        io.stdout(`  ${name.padEnd(9)} Dice ${m.Dice.toFixed(3)}  (${m.n_pred} voxels predicted, ${m.n_ref} in the reference)`);
      }
      return EXIT.ok;
    });
  },
};
