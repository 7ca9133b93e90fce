// The training losses of nnU-Net v2 over our libtorch tensors: soft Dice (MemoryEfficientSoftDiceLoss),
// robust cross entropy, the label (Dice + CE) and region (Dice + BCE) compounds and deep supervision.
export { softDiceLoss, oneHotTarget, type SoftDiceOptions, type DiceNonlin } from './dice.js';
export { robustCrossEntropy, type CrossEntropyOptions } from './cross-entropy.js';
export { DiceCELoss, DiceBCELoss, type Loss, type DiceCEOptions, type DiceBCEOptions } from './compound.js';
export { DeepSupervisionWrapper, deepSupervisionWeights, deepSupervisionScales } from './deep-supervision.js';
