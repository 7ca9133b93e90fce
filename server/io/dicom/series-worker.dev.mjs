// Worker entry used only when the server runs from its TypeScript sources under tsx (tests,
// development): worker threads do not inherit tsx's loader, so the TypeScript worker is loaded
// through tsx's tsImport. Built code (dist/) runs series-worker.js directly.
import { tsImport } from 'tsx/esm/api';

await tsImport('./series-worker.ts', import.meta.url);
