// Worker entry used only when the server runs from its TypeScript sources under tsx (tests,
// development): worker threads do not inherit tsx's loader, so the TypeScript worker is loaded
// through tsx's tsImport. Built code (dist/) uses onnx-thread-worker.js directly.
import { tsImport } from 'tsx/esm/api';

await tsImport('./onnx-thread-worker.ts', import.meta.url);
