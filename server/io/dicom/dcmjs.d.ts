// The parts of dcmjs (0.51, no bundled types) and of the OpenJPEG WebAssembly build that
// server/io/dicom uses, typed as narrowly as we call them.

declare module 'dcmjs' {
  /** One element of a DICOM dictionary: tag "GGGGEEEE" -> { vr, Value }. */
  export interface DicomElement {
    vr: string;
    Value?: unknown[];
  }
  export type DicomDataDict = Record<string, DicomElement>;

  /** A "naturalized" dataset: keywords as property names, single values unwrapped. */
  export type NaturalDataset = Record<string, unknown>;

  export class DicomDict {
    constructor(meta: DicomDataDict);
    meta: DicomDataDict;
    dict: DicomDataDict;
    write(options?: { allowInvalidVRLength?: boolean; fragmentMultiframe?: boolean }): ArrayBuffer;
  }

  export const data: {
    DicomDict: typeof DicomDict;
    DicomMessage: {
      readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; untilTag?: string; includeUntilTagValue?: boolean; noCopy?: boolean }): DicomDict;
    };
    DicomMetaDictionary: {
      naturalizeDataset(dict: DicomDataDict): NaturalDataset;
      denaturalizeDataset(dataset: NaturalDataset): DicomDataDict;
      uid(): string;
    };
    datasetToDict(dataset: NaturalDataset): DicomDict;
  };

  export const log: { setLevel(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'): void };

  const dcmjs: { data: typeof data; log: typeof log };
  export default dcmjs;
}

declare module '@cornerstonejs/codec-openjpeg/wasmjs' {
  export interface J2KFrameInfo {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned: boolean;
  }
  export interface J2KDecoder {
    getEncodedBuffer(length: number): Uint8Array;
    getDecodedBuffer(): Uint8Array;
    decode(): void;
    getFrameInfo(): J2KFrameInfo;
    delete(): void;
  }
  export interface OpenJpegModule {
    J2KDecoder: new () => J2KDecoder;
  }
  const factory: (options?: { print?: (s: string) => void; printErr?: (s: string) => void }) => Promise<OpenJpegModule>;
  export default factory;
}
