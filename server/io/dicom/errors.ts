// Errors of DICOM reading and writing. They are ImageFormatErrors, so the RPC layer answers
// INVALID_ARGUMENT with the message; each names the instance (file name or SOPInstanceUID) and
// the reason.
import { ImageFormatError } from '../errors.js';

export class DicomError extends ImageFormatError {
  constructor(instance: string, reason: string) {
    super(instance, reason);
    this.name = 'DicomError';
  }
}
