// Typed errors of the I/O layer: each names the file and the reason, so a user can act on it.

/** A file that cannot be read or written as the format it claims to be. */
export class ImageFormatError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ImageFormatError';
  }
}

/** A volume refused because it is larger than the configured voxel limit (checked before allocation). */
export class VolumeTooLargeError extends ImageFormatError {
  constructor(file: string, voxels: number, limit: number) {
    super(file, `volume has ${voxels} voxels, more than the limit of ${limit} (raise NNUNET_MAX_VOXELS to allow it)`);
    this.name = 'VolumeTooLargeError';
  }
}
