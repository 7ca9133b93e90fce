// The module system networks are written in: parameters that live without libtorch until
// training materialises them, nnU-Net-compatible state-dict keys, and the layers nnU-Net uses.
export { Parameter } from './parameter.js';
export { Module, Layer, StateDictError, type LoadReport, type ShapeMismatch, type StateTensor, type WeightSource } from './module.js';
export { Conv, ConvTranspose, InstanceNorm, LeakyReLU, ReLU, Dropout, AvgPool, Identity, Sequential, ModuleList, type ConvOptions } from './layers.js';
export { NormalRng, kaimingNormal } from './init.js';
