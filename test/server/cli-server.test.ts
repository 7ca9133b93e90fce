// The `nnunet` CLI as a client of the server. Against the real server process (named with
// --server and with NNUNET_SERVER): list_models, verify_dataset_integrity, predict (streamed in and
// out, identical voxels to nnU-Net), plan_and_preprocess and a tiny train; a wrong token and an
// unreachable address fail fast with the address in the message. Without a server: the same
// commands through the embedded one, which is stopped afterwards (its port refuses, and a CLI
// process exits by itself).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { runCli } from '../../client/cli.js';
import { connect } from '../../client/connection.js';
import { NnunetClient } from '../../client/sdk/index.js';
import { torchAvailable } from '../../server/engine/torch.js';
import { readNifti } from '../../server/io/nifti.js';
import { FIXTURE_PREDICTIONS, installFixtureModel } from '../fixtures/nnunet-model.js';
import { writeSyntheticDataset } from '../fixtures/synthetic.js';
import { HIPPOCAMPUS, REPO_ROOT, tempDir } from '../helpers.js';
import { ADMIN_TOKEN, startServerProcess, type ServerProcess } from './server-process.js';

interface Run {
  code: number;
  out: string;
  err: string;
  seconds: number;
}

async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const t0 = performance.now();
  const code = await runCli(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env });
  return { code, out: out.join('\n'), err: err.join('\n'), seconds: (performance.now() - t0) / 1000 };
}

const MODEL_ARGS = ['-d', '104', '-c', '3d_fullres', '-tr', 'nnUNetTrainer_RefSmall', '-p', 'nnUNetPlansSmall', '-f', '0', '--disable_tta'];

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function sameAsNnunet(file: string, caseId: string): Promise<void> {
  const ours = await readNifti(file);
  const theirs = await readNifti(join(FIXTURE_PREDICTIONS, 'notta', `${caseId}.nii.gz`));
  assert.deepEqual(ours.shape, theirs.shape);
  assert.deepEqual([...ours.data], [...theirs.data]);
}

describe('nnunet CLI through the server', function () {
  this.timeout(300_000);
  let t: ReturnType<typeof tempDir>;
  let home: string;
  let input: string;
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    t = tempDir('nnunet-cli-server-');
    home = join(t.dir, 'home');
    installFixtureModel(join(home, 'nnUNet_results'));
    await writeSyntheticDataset(join(home, 'nnUNet_raw'), { id: 962, name: 'CliPhantom', cases: 6, shape: [4, 24, 24], labels: 1, seed: 5 });
    input = join(t.dir, 'in');
    mkdirSync(input);
    copyFileSync(join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_003_0000.nii.gz'), join(input, 'hippocampus_003_0000.nii.gz'));
    server = await startServerProcess({
      NNUNET_HOME: home,
      NNUNET_ADMIN_TOKEN: ADMIN_TOKEN,
      NNUNET_BUNDLED_MODELS: 'none',
      NNUNET_TRAIN_ITERATIONS_PER_EPOCH: '2',
      NNUNET_TRAIN_VAL_ITERATIONS_PER_EPOCH: '1',
    });
    // The CLI's own environment has no data roots: everything must come from the server.
    env = { PATH: process.env.PATH, NNUNET_HOME: join(t.dir, 'elsewhere') };
  });

  after(async () => {
    await server?.stop();
    t?.cleanup();
  });

  it('list_models with --server and --token, and with NNUNET_SERVER and NNUNET_TOKEN', async () => {
    const flagged = await cli(['list_models', '--server', server.address, '--token', ADMIN_TOKEN], env);
    assert.equal(flagged.code, 0, flagged.err);
    assert.match(flagged.out, /^DATASET\s+TRAINER\s+PLANS\s+CONFIGURATION\s+FOLDS$/m);
    assert.match(flagged.out, /^Dataset104_HippoDev\s+nnUNetTrainer_RefSmall\s+nnUNetPlansSmall\s+3d_fullres\s+0$/m);
    const fromEnv = await cli(['list_models', '--json'], { ...env, NNUNET_SERVER: server.address, NNUNET_TOKEN: ADMIN_TOKEN });
    assert.equal(fromEnv.code, 0, fromEnv.err);
    assert.deepEqual(
      JSON.parse(fromEnv.out).map((m: { dataset: string; configuration: string }) => `${m.dataset}/${m.configuration}`),
      ['Dataset104_HippoDev/3d_fullres'],
    );
  });

  it('a wrong token and an unreachable address fail at once with a message naming the address', async () => {
    const refused = await cli(['list_models', '--server', server.address, '--token', 'not-a-token'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.err, new RegExp(`server at ${server.address} refused the token.*--token or NNUNET_TOKEN`));

    const port = await closedPort();
    const closed = await cli(['list_models'], { ...env, NNUNET_SERVER: `127.0.0.1:${port}` });
    assert.equal(closed.code, 1);
    assert.match(closed.err, new RegExp(`cannot reach the nnunet server at 127\\.0\\.0\\.1:${port} \\(from NNUNET_SERVER\\)`));
    assert.ok(closed.seconds < 10, `took ${closed.seconds} s`);

    // Nothing answers at all (a non-routable address): the connect deadline ends it.
    const silent = await cli(['list_models', '--server', '10.255.255.1:50051'], { ...env, NNUNET_CONNECT_TIMEOUT_S: '2' });
    assert.equal(silent.code, 1);
    assert.match(silent.err, /cannot reach the nnunet server at 10\.255\.255\.1:50051 \(from --server\)/);
    assert.ok(silent.seconds < 10, `took ${silent.seconds} s`);

    const malformed = await cli(['list_models', '--server', 'localhost'], env);
    assert.equal(malformed.code, 1);
    assert.match(malformed.err, /--server: expected host:port/);
  });

  it('verify_dataset_integrity checks the dataset in the data root of the server', async () => {
    const r = await cli(['verify_dataset_integrity', '-d', '962', '--server', server.address, '--token', ADMIN_TOKEN], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Dataset962_CliPhantom: OK — 6 case\(s\) checked/m);
    const missing = await cli(['verify_dataset_integrity', '-d', '963', '--server', server.address, '--token', ADMIN_TOKEN], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /NOT_FOUND/);
  });

  it('predict streams a local folder through the server and writes what nnU-Net writes', async () => {
    const output = join(t.dir, 'out-remote');
    const r = await cli(['predict', '-i', input, '-o', output, ...MODEL_ARGS, '--save_probabilities', '--server', server.address, '--token', ADMIN_TOKEN], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /predicting 1 case\(s\) with 3d_fullres, fold\(s\) 0, no mirroring/);
    await sameAsNnunet(join(output, 'hippocampus_003.nii.gz'), 'hippocampus_003');
    for (const f of ['hippocampus_003.npz', 'hippocampus_003.json', 'dataset.json', 'predict_from_raw_data_args.json']) assert.ok(existsSync(join(output, f)), f);
    assert.equal(JSON.parse(readFileSync(join(output, 'dataset.json'), 'utf8')).file_ending, '.nii.gz');
    assert.equal(JSON.parse(readFileSync(join(output, 'predict_from_raw_data_args.json'), 'utf8')).server, server.address);

    // Flags Predict does not carry are refused before anything is sent, naming the local way.
    const chk = await cli(['predict', '-i', input, '-o', output, ...MODEL_ARGS, '-chk', 'checkpoint_best', '--server', server.address], env);
    assert.equal(chk.code, 2);
    assert.match(chk.err, /-chk checkpoint_best: .*predict_from_modelfolder/);
  });

  it('plan_and_preprocess and a tiny train run as jobs on the server', async function () {
    const r = await cli(['plan_and_preprocess', '-d', '962', '-c', '2d', '-np', '1', '--server', server.address, '--token', ADMIN_TOKEN], env);
    assert.equal(r.code, 0, r.err);
    const plansFile = join(home, 'nnUNet_preprocessed', 'Dataset962_CliPhantom', 'nnUNetPlans.json');
    assert.ok(existsSync(plansFile));
    if (!torchAvailable()) {
      console.log('      libtorch is not available (server/native not built): training through the CLI skipped');
      return this.skip();
    }
    // A smaller network than planned, so two iterations take seconds on a busy CPU.
    const plans = JSON.parse(readFileSync(plansFile, 'utf8'));
    const c = plans.configurations['2d'];
    Object.assign(c, { patch_size: [16, 16], batch_size: 2 });
    Object.assign(c.architecture.arch_kwargs, { n_stages: 3, features_per_stage: [4, 8, 16], kernel_sizes: [[3, 3], [3, 3], [3, 3]], strides: [[1, 1], [2, 2], [2, 2]], n_conv_per_stage: [1, 1, 1], n_conv_per_stage_decoder: [1, 1] });
    writeFileSync(plansFile, JSON.stringify(plans, null, 4));

    const train = await cli(['train', '962', '2d', '0', '--num_epochs', '1', '-device', 'cpu', '--server', server.address, '--token', ADMIN_TOKEN], env);
    assert.equal(train.code, 0, `${train.err}\n${train.out}`);
    assert.match(train.out, /training nnUNetTrainer__nnUNetPlans__2d fold 0 on cpu: \d+ training \/ \d+ validation cases, epochs 1\.\.1 of 1 × 2 iterations/);
    assert.match(train.out, /^epoch 1\/1: train_loss /m);
    assert.match(train.out, /fold 0 finished: .*nnUNetTrainer__nnUNetPlans__2d/);
    assert.ok(existsSync(join(home, 'nnUNet_results', 'Dataset962_CliPhantom', 'nnUNetTrainer__nnUNetPlans__2d', 'fold_0', 'checkpoint_final.pth')) || existsSync(join(home, 'nnUNet_results', 'Dataset962_CliPhantom', 'nnUNetTrainer__nnUNetPlans__2d', 'fold_0', 'checkpoint_final.safetensors')));

    // Trainer modules are files of this machine: refused by name with a named server.
    const module = await cli(['train', '962', '2d', '0', '-tr', './my_trainer.ts', '--server', server.address], env);
    assert.equal(module.code, 2);
    assert.match(module.err, /trainer module.*runs only built-in trainers/);
  });
});

describe('nnunet CLI with the embedded server', function () {
  this.timeout(300_000);
  let t: ReturnType<typeof tempDir>;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    t = tempDir('nnunet-cli-embedded-');
    installFixtureModel(join(t.dir, 'home', 'nnUNet_results'));
    await writeSyntheticDataset(join(t.dir, 'home', 'nnUNet_raw'), { id: 964, name: 'Embedded', cases: 3, shape: [4, 16, 16], labels: 1, seed: 2 });
    env = { PATH: process.env.PATH, NNUNET_HOME: join(t.dir, 'home'), NNUNET_BUNDLED_MODELS: 'none' };
  });
  after(() => t?.cleanup());

  it('list_models, verify_dataset_integrity and predict act on the local data roots', async () => {
    const models = await cli(['list_models'], env);
    assert.equal(models.code, 0, models.err);
    assert.match(models.out, /^Dataset104_HippoDev\s+nnUNetTrainer_RefSmall/m);
    const verify = await cli(['verify_dataset_integrity', '-d', '964'], env);
    assert.equal(verify.code, 0, verify.err);
    assert.match(verify.out, /Dataset964_Embedded: OK — 3 case\(s\) checked/);
    const input = join(t.dir, 'in');
    mkdirSync(input);
    copyFileSync(join(HIPPOCAMPUS, 'imagesTr', 'hippocampus_003_0000.nii.gz'), join(input, 'hippocampus_003_0000.nii.gz'));
    const output = join(t.dir, 'out');
    const predicted = await cli(['predict', '-i', input, '-o', output, ...MODEL_ARGS], env);
    assert.equal(predicted.code, 0, predicted.err);
    await sameAsNnunet(join(output, 'hippocampus_003.nii.gz'), 'hippocampus_003');
    assert.equal(JSON.parse(readFileSync(join(output, 'predict_from_raw_data_args.json'), 'utf8')).server, 'embedded');
  });

  it('stops the embedded server: its port refuses afterwards', async () => {
    const connection = await connect({}, { stdout: () => {}, stderr: () => {}, env });
    assert.equal(connection.embedded, true);
    assert.match(connection.address, /^127\.0\.0\.1:\d+$/);
    assert.equal((await connection.client.listModels()).length, 1);
    await connection.close();
    const probe = new NnunetClient({ address: connection.address });
    try {
      await assert.rejects(probe.serverInfo({ deadline: Date.now() + 5000 }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
    } finally {
      probe.close();
    }
  });

  it('a CLI process exits by itself after a command on the embedded server', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'client', 'cli.ts'), 'list_models'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(-1);
      }, 60_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0, `the CLI did not exit by itself (-1) or failed:\n${out}`);
    assert.match(out, /Dataset104_HippoDev/);
  });
});
