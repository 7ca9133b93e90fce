// Errors of the dataset layer. A DatasetError is a problem with the user's dataset or request,
// phrased so the user can fix it; callers map it to INVALID_ARGUMENT / NOT_FOUND / exit code 1.

export class DatasetError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'DatasetError';
  }
}
