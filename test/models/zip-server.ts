// A loopback HTTP server (node:http) serving files for the download tests, with the misbehaviours
// a real mirror shows: dropping the connection part-way, ignoring Range, redirecting. It records
// every request's path and Range header so tests can assert what the client asked for.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Route {
  body: Uint8Array;
  /** Close the connection after this many body bytes on the first `dropTimes` requests. */
  dropAfter?: number;
  dropTimes?: number;
  /** Answer Range requests with 206 (default true). */
  ranges?: boolean;
  /** Redirect to this path instead of serving. */
  redirectTo?: string;
  status?: number;
}

export interface ZipServer {
  url(path: string): string;
  requests: { path: string; range?: string }[];
  close(): Promise<void>;
}

export async function startZipServer(routes: Record<string, Route>): Promise<ZipServer> {
  const requests: ZipServer['requests'] = [];
  const served = new Map<string, number>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    requests.push({ path, range: req.headers.range });
    const route = routes[path];
    if (!route) {
      res.writeHead(404).end('not found');
      return;
    }
    if (route.redirectTo) {
      res.writeHead(302, { location: route.redirectTo }).end();
      return;
    }
    if (route.status) {
      res.writeHead(route.status).end('error');
      return;
    }
    const count = served.get(path) ?? 0;
    served.set(path, count + 1);
    const total = route.body.length;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && route.ranges !== false && Number(range[1]) < total) {
      start = Number(range[1]);
      res.writeHead(206, { 'content-length': total - start, 'content-range': `bytes ${start}-${total - 1}/${total}`, 'accept-ranges': 'bytes', etag: '"v1"' });
    } else {
      res.writeHead(200, { 'content-length': total, ...(route.ranges !== false ? { 'accept-ranges': 'bytes', etag: '"v1"' } : {}) });
    }
    const drop = route.dropAfter !== undefined && count < (route.dropTimes ?? 1);
    if (drop) {
      // send part of the body, then cut the connection: the client sees a short body
      res.write(route.body.subarray(start, start + route.dropAfter!), () => res.socket?.destroy());
      return;
    }
    res.end(route.body.subarray(start));
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
