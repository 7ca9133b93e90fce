// ONNX export of a module tree: the inference graph only (full-resolution logits, no deep
// supervision, no softmax, as nnU-Net's predictor consumes the network), opset 17, dynamic batch
// and spatial sizes, weights as initializers. Needs no libtorch: parameters are read as arrays.
import onnxProto from 'onnx-proto';
import { writeFileAtomic } from '../../io/atomic.js';
import type { Module } from '../nn/module.js';
import type { Parameter } from '../nn/parameter.js';
import { OnnxGraph, type OnnxAttribute } from './graph.js';

const { onnx } = onnxProto;

export const ONNX_OPSET = 17;
/** IR version 8 is the one that goes with opset 17 (ONNX 1.12+). */
const IR_VERSION = 8;
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'logits';

/** A network that can write its own inference graph. */
export interface OnnxExportable extends Module {
  readonly inputChannels: number;
  readonly numClasses: number;
  readonly dims: 2 | 3;
  toOnnx(g: OnnxGraph, input: string): string;
  onnxMetadata?(): Record<string, string>;
}

export interface OnnxExportOptions {
  /** Extra metadata_props (trainer, configuration, fold, ...), added to the network's own. */
  metadata?: Record<string, string>;
  graphName?: string;
}

const SPATIAL_NAMES = ['spatial_0', 'spatial_1', 'spatial_2'];

function valueInfo(name: string, channels: number, dims: number): onnxProto.onnx.IValueInfoProto {
  const dim: onnxProto.onnx.TensorShapeProto.IDimension[] = [{ dimParam: 'batch' }, { dimValue: channels }];
  for (let i = 0; i < dims; i++) dim.push({ dimParam: SPATIAL_NAMES[i] });
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim } } } };
}

function attribute(name: string, a: OnnxAttribute): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
  }
}

/** Builds the graph: each module emits its own nodes; initializers are named by state-dict key. */
export function buildOnnxGraph(network: OnnxExportable): OnnxGraph {
  const names = new Map<Parameter, string>();
  for (const [key, p] of network.namedParameters()) names.set(p, key);
  const g = new OnnxGraph(names);
  g.reserve(ONNX_INPUT);
  const out = network.toOnnx(g, ONNX_INPUT);
  if (out === ONNX_INPUT) throw new Error('ONNX export: the network produced no nodes');
  g.renameOutput(out, ONNX_OUTPUT);
  return g;
}

/** The serialised ONNX model (ModelProto bytes). */
export function exportOnnx(network: OnnxExportable, o: OnnxExportOptions = {}): Uint8Array {
  const g = buildOnnxGraph(network);
  const metadata = { ...(network.onnxMetadata?.() ?? {}), ...(o.metadata ?? {}), input: ONNX_INPUT, output: `${ONNX_OUTPUT} (no softmax)` };
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'nnunet-server',
    producerVersion: '1',
    domain: 'nnunet',
    modelVersion: 1,
    docString: 'nnU-Net segmentation network: input [batch, channels, ...spatial] float32 -> logits [batch, classes, ...spatial]',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: o.graphName ?? 'nnunet',
      input: [valueInfo(ONNX_INPUT, network.inputChannels, network.dims)],
      output: [valueInfo(ONNX_OUTPUT, network.numClasses, network.dims)],
      initializer: g.initializers.map((t) => ({
        name: t.name,
        dims: t.shape,
        dataType: onnx.TensorProto.DataType.FLOAT,
        // ONNX raw_data is little-endian, as every platform Node runs on.
        rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      })),
      node: g.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes).map(([k, a]) => attribute(k, a)),
      })),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Writes the model through a temporary file and a rename (never a half-written model). */
export async function writeOnnx(path: string, network: OnnxExportable, o: OnnxExportOptions = {}): Promise<void> {
  await writeFileAtomic(path, exportOnnx(network, o));
}
