// ONNX export of our networks for onnxruntime-node: the graph builder modules write into, and
// the serialiser (opset 17, dynamic batch and spatial sizes, weights as initializers).
export { OnnxGraph, int, ints, float, type OnnxAttribute, type OnnxNode, type OnnxInitializer } from './graph.js';
export { exportOnnx, writeOnnx, buildOnnxGraph, ONNX_OPSET, ONNX_INPUT, ONNX_OUTPUT, type OnnxExportable, type OnnxExportOptions } from './export.js';
