// nnU-Net v2's networks in TypeScript: PlainConvUNet and ResidualEncoderUNet built from plans,
// with nnU-Net's state-dict keys, and the import of a trained nnU-Net v2 checkpoint.
export { PlainConvUNet, ResidualEncoderUNet, UNet, UNetDecoder, PlainConvEncoder, ResidualEncoder, Encoder, type UNetArchitecture, type UNetOptions } from './unet.js';
export { ConvDropoutNormReLU, StackedConvBlocks, BasicBlockD, StackedResidualBlocks, type ConvSpec } from './blocks.js';
export { buildNetwork, buildNetworkFromPlans, resolveArchitecture, resolveConvSpec, ArchitectureError } from './from-plans.js';
export { loadNnunetCheckpointIntoNetwork, NnunetImportError, type ImportedNnunetModel, type NnunetImportOptions } from './nnunet-import.js';
