// The Kubernetes manifests in deploy/ against the Kubernetes API schemas (kubernetes-models, which
// is generated from Kubernetes' OpenAPI definitions) in two ways: its JSON-schema validators catch
// wrong types and missing required fields; and a TypeScript check of every object
// against the same definitions' interfaces catches fields the schema does not have, as
// `kubectl apply` (strict field validation) would. Negative cases prove both checks bite. Also
// checks what ties the files together: kustomization resources, env names the server reads, and
// the probes on the health port.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../helpers.js';

const DEPLOY = join(REPO_ROOT, 'deploy');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
  [key: string]: unknown;
}

/** kubernetes-models' module for an apiVersion/kind: core "v1" lives at v1/, groups at <group>/<version>/. */
const modelPath = (o: K8sObject) => `kubernetes-models/${o.apiVersion}/${o.kind}`;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

function readObjects(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${relative(REPO_ROOT, file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as K8sObject;
  });
}

/** Runs kubernetes-models' validator for the object's kind; returns its message, or undefined when valid. */
async function schemaError(o: K8sObject): Promise<string | undefined> {
  const mod = (await import(modelPath(o))) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  if (!Model) throw new Error(`kubernetes-models has no ${o.kind} in ${modelPath(o)}`);
  try {
    new Model(o).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Type-checks every object as an object literal of its kind's interface (I<Kind>); returns the
 * compiler's messages per object. Excess-property checks flag unknown fields at any depth.
 */
function typeErrors(objects: { name: string; object: K8sObject }[]): string[][] {
  const file = join(REPO_ROOT, 'test', 'deploy', '.manifests-typecheck.ts');
  const lines = objects.map(({ object }, i) => `import type { I${object.kind} as T${i} } from '${modelPath(object)}';`);
  const firstLines: number[] = [];
  objects.forEach(({ object }, i) => {
    firstLines.push(lines.length);
    lines.push(...`export const o${i}: T${i} = ${JSON.stringify(object, null, 1)};`.split('\n'));
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: [] };
  // The checked file exists only in memory; modules resolve from test/deploy as a real file would.
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sf = program.getSourceFile(file)!;
  const out: string[][] = objects.map(() => []);
  for (const d of [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]) {
    const line = d.start === undefined ? 0 : sf.getLineAndCharacterOfPosition(d.start).line;
    // An error belongs to the object whose literal starts last at or before its line.
    let i = 0;
    while (i + 1 < firstLines.length && firstLines[i + 1] <= line) i++;
    out[i].push(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }
  return out;
}

const files = yamlFiles(DEPLOY).filter((f) => !f.endsWith('kustomization.yaml'));
const manifests = files.flatMap((f) => readObjects(f).map((object) => ({ name: `${relative(DEPLOY, f)} ${object.kind}/${object.metadata?.name ?? '?'}`, object })));
const byKind = (kind: string) => manifests.filter((m) => m.object.kind === kind).map((m) => m.object);

describe('deploy/ Kubernetes manifests', function () {
  this.timeout(120_000);

  it('every object validates against its Kubernetes schema', async () => {
    assert.ok(manifests.length >= 9, `${manifests.length} objects`);
    for (const m of manifests) assert.equal(await schemaError(m.object), undefined, m.name);
  });

  it('the schema validator rejects a wrong type and a missing required field', async () => {
    const deployment = structuredClone(byKind('Deployment')[0]) as K8sObject & { spec: { replicas: unknown; template: { spec: { containers: { name?: string; imagePullPolicy?: string }[] } } } };
    deployment.spec.replicas = 'two';
    assert.match((await schemaError(deployment)) ?? 'valid', /replicas must be integer/);
    const noName = structuredClone(byKind('Deployment')[0]) as typeof deployment;
    delete noName.spec.template.spec.containers[0].name;
    assert.match((await schemaError(noName)) ?? 'valid', /must have required property '?name'?/);
    const service = structuredClone(byKind('Service')[0]) as K8sObject & { spec: { ports: { port: unknown }[] } };
    service.spec.ports[0].port = { number: 50051 };
    assert.match((await schemaError(service)) ?? 'valid', /port must be integer/);
  });

  it('no object has a field its schema lacks (strict field validation), and a misspelt one is caught', () => {
    const good = typeErrors(manifests);
    manifests.forEach((m, i) => assert.deepEqual(good[i], [], m.name));
    const misspelt = structuredClone(byKind('Deployment')[0]) as K8sObject & { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    const probe = misspelt.spec.template.spec.containers[0].livenessProbe;
    delete misspelt.spec.template.spec.containers[0].livenessProbe;
    misspelt.spec.template.spec.containers[0].livenesProbe = probe;
    const wrongType = structuredClone(byKind('PodDisruptionBudget')[0]) as K8sObject & { spec: Record<string, unknown> };
    wrongType.spec.minAvailable = true;
    const [bad, badType] = typeErrors([
      { name: 'misspelt', object: misspelt },
      { name: 'wrong type', object: wrongType },
    ]);
    assert.ok(bad.some((e) => /livenesProbe/.test(e) && /does not exist/.test(e)), bad.join('\n'));
    assert.ok(badType.some((e) => /'true' is not assignable to type 'IIntOrString/.test(e)), badType.join('\n'));
  });

  it('kustomization.yaml lists every manifest of the Deployment and generates the Secret from an env file', () => {
    const k = readObjects(join(DEPLOY, 'kustomization.yaml'))[0] as unknown as { resources: string[]; namespace: string; secretGenerator: { name: string; envs: string[] }[] };
    const topLevel = readdirSync(DEPLOY).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    assert.deepEqual([...k.resources].sort(), topLevel.sort());
    assert.equal(k.namespace, 'nnunet');
    const gen = k.secretGenerator.find((g) => g.name === 'nnunet-secrets')!;
    for (const env of gen.envs) assert.ok(existsSync(join(DEPLOY, `${env}.example`)), `${env}.example documents the Secret's keys`);
    const keys = readFileSync(join(DEPLOY, 'secrets.env.example'), 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0]);
    assert.deepEqual(keys.sort(), ['NNUNET_ADMIN_TOKEN', 'NNUNET_DATABASE_URL', 'NNUNET_READ_TOKEN']);
  });

  it('the Deployment probes the plaintext health port, asks for a GPU and uses settings the server reads', () => {
    const d = byKind('Deployment')[0] as unknown as {
      spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: { ports: { name: string; containerPort: number }[]; resources: { limits: Record<string, unknown> }; startupProbe: { grpc: { port: number } }; readinessProbe: { grpc: { port: number; service?: string } }; livenessProbe: { grpc: { port: number; service?: string } } }[] } } };
    };
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    const config = byKind('ConfigMap')[0] as unknown as { data: Record<string, string> };
    const healthPort = Number(config.data.NNUNET_HEALTH_PORT);
    assert.equal(c.ports.find((p) => p.name === 'health')?.containerPort, healthPort);
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) assert.equal(probe.grpc.port, healthPort);
    assert.equal(c.livenessProbe.grpc.service, 'liveness');
    assert.equal(c.readinessProbe.grpc.service, undefined);
    assert.equal(c.resources.limits['nvidia.com/gpu'], 1);
    assert.ok(pod.terminationGracePeriodSeconds > Number(config.data.NNUNET_SHUTDOWN_GRACE_SECONDS));
    assert.ok(Number(config.data.NNUNET_MAX_CONNECTION_AGE_MS) > 0);
    // Every NNUNET_ setting in the ConfigMap is one the server reads.
    const sources = ['server/config.ts', 'server/jobs/index.ts', 'server/dataset/paths.ts'].map((f) => readFileSync(join(REPO_ROOT, f), 'utf8')).join('\n');
    for (const key of Object.keys(config.data)) assert.ok(sources.includes(`'${key}'`) || sources.includes(`.${key}`), `${key} is not read by the server`);
    const service = byKind('Service').find((s) => (s as unknown as { spec: { clusterIP?: string } }).spec.clusterIP === 'None');
    assert.ok(service, 'a headless Service for client-side round robin');
  });
});
