// Entry of the fingerprint worker when running from TypeScript sources (tests, tsx): worker threads
// do not inherit tsx's loader, so register it before importing the .ts worker. Builds use the .js.
import { register } from 'tsx/esm/api';

register();
export default (await import('./fingerprint-worker.ts')).default;
