// A DICOMweb client (PS3.18) for the three services a PACS bridge needs: QIDO-RS to find a
// study's series and instances, WADO-RS to retrieve a series' Part 10 instances, STOW-RS to store
// a DICOM SEG back. Credentials (HTTP Basic or a bearer token) come from the configuration
// (NNUNET_DICOMWEB_URL, _USER, _PASSWORD or _TOKEN), never from the request that names a series.
import { randomBytes } from 'node:crypto';
import type { DicomFile } from '../io/dicom/series.js';

export interface DicomWebConfig {
  /** Service root, e.g. http://localhost:8042/dicom-web (Orthanc's). */
  url: string;
  user?: string;
  password?: string;
  /** Bearer token; used instead of user/password when set. */
  token?: string;
  /** Per-request timeout (default 120 s). */
  timeoutMs?: number;
}

/** NNUNET_DICOMWEB_URL/_USER/_PASSWORD/_TOKEN; `url` overrides the URL. Undefined when no URL is known. */
export function dicomWebConfigFromEnv(env: NodeJS.ProcessEnv, url?: string): DicomWebConfig | undefined {
  const root = url || env.NNUNET_DICOMWEB_URL;
  if (!root) return undefined;
  return {
    url: root,
    user: env.NNUNET_DICOMWEB_USER || undefined,
    password: env.NNUNET_DICOMWEB_PASSWORD || undefined,
    token: env.NNUNET_DICOMWEB_TOKEN || undefined,
  };
}

/** A DICOMweb request that failed: the URL, the HTTP status and what the server said. */
export class DicomWebError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
    detail: string,
  ) {
    super(`DICOMweb ${url}: ${status ? `HTTP ${status} ` : ''}${detail}`);
    this.name = 'DicomWebError';
  }
}

/** The attributes of a QIDO-RS series result we use. */
export interface SeriesSummary {
  seriesInstanceUID: string;
  modality: string;
  seriesDescription: string;
  instances: number;
}

export interface StoreResult {
  stored: string[];
  failed: { sopInstanceUID: string; reason: number }[];
}

type DicomJson = Record<string, { vr?: string; Value?: unknown[] }>;

const first = (item: DicomJson, tag: string): string => {
  const v = item[tag]?.Value?.[0];
  return v === undefined || v === null ? '' : String(v);
};

export class DicomWebClient {
  private readonly root: string;

  constructor(private readonly config: DicomWebConfig) {
    const url = new URL(config.url); // throws on a malformed URL
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DicomWebError(config.url, 0, 'the DICOMweb URL must be http(s)');
    this.root = config.url.replace(/\/+$/, '');
  }

  /** QIDO-RS: the series of a study. */
  async searchSeries(study: string): Promise<SeriesSummary[]> {
    const items = await this.json(`/studies/${uid(study)}/series`);
    return items.map((s) => ({
      seriesInstanceUID: first(s, '0020000E'),
      modality: first(s, '00080060'),
      seriesDescription: first(s, '0008103E'),
      instances: Number(first(s, '00201209') || 0),
    }));
  }

  /** QIDO-RS: the SOP Instance UIDs of a series. */
  async searchInstances(study: string, series: string): Promise<string[]> {
    const items = await this.json(`/studies/${uid(study)}/series/${uid(series)}/instances`);
    return items.map((i) => first(i, '00080018'));
  }

  /**
   * WADO-RS: every instance of a series as Part 10 files, in the transfer syntax the PACS stores
   * (transfer-syntax=*: no transcoding on the way; our reader decodes native and JPEG 2000).
   */
  async retrieveSeries(study: string, series: string): Promise<DicomFile[]> {
    const path = `/studies/${uid(study)}/series/${uid(series)}`;
    const response = await this.request(path, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    const body = new Uint8Array(await response.arrayBuffer());
    const parts = parseMultipart(this.root + path, response.headers.get('content-type') ?? '', body);
    return parts.map((bytes, i) => ({ name: `${series} instance ${i + 1}`, bytes }));
  }

  /** STOW-RS: stores Part 10 files (e.g. a SEG) into the study; fails if the PACS refuses any. */
  async store(study: string, files: Uint8Array[]): Promise<StoreResult> {
    const boundary = `nnunet-${randomBytes(12).toString('hex')}`;
    const chunks: Uint8Array[] = [];
    for (const f of files) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), f, Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    const path = `/studies/${uid(study)}`;
    const response = await this.request(path, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
      body: Buffer.concat(chunks),
    });
    const text = await response.text();
    const result = text ? (JSON.parse(text) as DicomJson) : {};
    const seq = (tag: string) => (result[tag]?.Value ?? []) as DicomJson[];
    const out: StoreResult = {
      stored: seq('00081199').map((r) => first(r, '00081155')),
      failed: seq('00081198').map((r) => ({ sopInstanceUID: first(r, '00081155'), reason: Number(first(r, '00081197')) })),
    };
    if (out.failed.length > 0) throw new DicomWebError(this.root + path, response.status, `the PACS refused ${out.failed.length} instance(s): ${out.failed.map((f) => `${f.sopInstanceUID} (reason 0x${f.reason.toString(16)})`).join(', ')}`);
    return out;
  }

  private async json(path: string): Promise<DicomJson[]> {
    const response = await this.request(path, { headers: { accept: 'application/dicom+json' } });
    if (response.status === 204) return [];
    const text = await response.text();
    if (!text) return [];
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed)) throw new DicomWebError(this.root + path, response.status, 'QIDO-RS answer is not a JSON array');
    return parsed as DicomJson[];
  }

  private async request(path: string, init: { method?: string; headers: Record<string, string>; body?: Buffer }): Promise<Response> {
    const url = this.root + path;
    const headers: Record<string, string> = { ...init.headers };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    else if (this.config.user !== undefined) headers.authorization = `Basic ${Buffer.from(`${this.config.user}:${this.config.password ?? ''}`).toString('base64')}`;
    let response: Response;
    try {
      response = await fetch(url, { method: init.method ?? 'GET', headers, body: init.body, signal: AbortSignal.timeout(this.config.timeoutMs ?? 120_000) });
    } catch (err) {
      throw new DicomWebError(url, 0, `request failed: ${err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err)}`);
    }
    if (!response.ok) {
      const detail = (await response.text().catch(() => '')).slice(0, 500);
      const hint = response.status === 401 || response.status === 403 ? ' (check NNUNET_DICOMWEB_USER/_PASSWORD or _TOKEN)' : '';
      throw new DicomWebError(url, response.status, `${response.statusText}${hint}${detail ? `: ${detail}` : ''}`);
    }
    return response;
  }
}

/** UIDs go into URL paths: only digits and dots are allowed. */
function uid(value: string): string {
  if (!/^[0-9]+(\.[0-9]+)*$/.test(value) || value.length > 64) throw new DicomWebError('', 0, `"${value}" is not a DICOM UID`);
  return value;
}

/**
 * The bodies of a multipart/related response. Parsed by hand: the npm multipart parsers (busboy,
 * formidable) handle multipart/form-data only, and the format is simple (RFC 2046: parts between
 * "--boundary" lines, each with headers, a blank line and the body up to CRLF--boundary).
 */
export function parseMultipart(url: string, contentType: string, body: Uint8Array): Uint8Array[] {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!/^multipart\/related/i.test(contentType) || !match) throw new DicomWebError(url, 200, `expected multipart/related with a boundary, got content-type "${contentType}"`);
  const boundary = Buffer.from(`--${match[1] ?? match[2]}`);
  const data = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const parts: Uint8Array[] = [];
  let at = data.indexOf(boundary);
  if (at < 0) throw new DicomWebError(url, 200, 'multipart body has no boundary line');
  for (;;) {
    const afterBoundary = at + boundary.length;
    if (data[afterBoundary] === 0x2d && data[afterBoundary + 1] === 0x2d) break; // "--": the closing delimiter
    const headersEnd = data.indexOf('\r\n\r\n', afterBoundary);
    if (headersEnd < 0) throw new DicomWebError(url, 200, 'multipart part without a header end');
    const next = data.indexOf(Buffer.concat([Buffer.from('\r\n'), boundary]), headersEnd + 4);
    if (next < 0) throw new DicomWebError(url, 200, 'multipart body ends inside a part (truncated response)');
    const headers = data.subarray(afterBoundary, headersEnd).toString('latin1');
    const type = /content-type:\s*([^\r\n;]+)/i.exec(headers)?.[1]?.trim().toLowerCase();
    if (type && type !== 'application/dicom') throw new DicomWebError(url, 200, `multipart part of type ${type}, expected application/dicom`);
    parts.push(new Uint8Array(data.subarray(headersEnd + 4, next)));
    at = next + 2;
  }
  return parts;
}
