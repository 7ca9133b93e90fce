// Which server a CLI command talks to. `--server host:port` (or NNUNET_SERVER) names a running
// one, with `--token` / NNUNET_TOKEN as its bearer token and TLS from NNUNET_CLIENT_TLS_*;
// without one, an embedded server is started in this process on a loopback port for the length
// of the command and stopped after it. Either way the command only ever uses the SDK, so what
// works here works against a deployment (one code path).
//
// The embedded server uses the same data roots as the command would (nnUNet_raw,
// nnUNet_preprocessed, nnUNet_results, NNUNET_HOME), no metrics port, a random admin token (so
// nothing else on the machine can use its port), and a job store of its own in a temporary
// folder: a command's jobs end with it, and an earlier interrupted training is never resumed by
// an unrelated command (`nnunet serve` keeps a persistent queue; continue a fold with --c).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { DestinationStream } from 'pino';
import type { OptionSpec, ParsedArgs } from './args.js';
import { NnunetClient, type ClientOptions } from './sdk/index.js';
import type { CommandIO } from './commands/types.js';

/** The options every command that goes through a server accepts. */
export const SERVER_OPTIONS: OptionSpec[] = [
  { flags: ['--server'], dest: 'server', help: 'nnunet server to use, host:port (default: NNUNET_SERVER, else an embedded server in this process)', metavar: 'HOST:PORT' },
  { flags: ['--token'], dest: 'token', help: "the server's bearer token (default: NNUNET_TOKEN)", metavar: 'TOKEN' },
];

/** How long to wait for a named server to answer before giving up (NNUNET_CONNECT_TIMEOUT_S). */
const DEFAULT_CONNECT_TIMEOUT_S = 10;

/** The named server did not answer: the message says which address, where it came from, and why. */
export class ConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionError';
  }
}

/** The user pressed Ctrl-C; the command stopped. */
export class InterruptedError extends Error {
  constructor(message = 'interrupted') {
    super(message);
    this.name = 'InterruptedError';
  }
}

export interface Connection {
  client: NnunetClient;
  /** host:port of the server in use (for the embedded one, its loopback port). */
  address: string;
  /** True when the server runs in this process for this command. */
  embedded: boolean;
  /**
   * Embedded server only: stops its running jobs the way a server shutdown does (a training
   * finishes its iteration and writes checkpoint_latest, then its job leaves RUNNING).
   */
  interruptJobs?: () => Promise<void>;
  /** Closes the client and, for the embedded server, stops it. Safe to call twice. */
  close(): Promise<void>;
}

interface Target {
  address: string;
  source: string;
}

/** The server named by --server or NNUNET_SERVER; undefined for the embedded one. */
export function serverTarget(args: ParsedArgs, env: NodeJS.ProcessEnv): Target | undefined {
  const given = typeof args.server === 'string' && args.server !== '' ? { address: args.server, source: '--server' } : env.NNUNET_SERVER ? { address: env.NNUNET_SERVER, source: 'NNUNET_SERVER' } : undefined;
  if (!given) return undefined;
  const address = given.address.replace(/^(grpc|dns):\/*/, '');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address)) {
    throw new ConnectionError(`${given.source}: expected host:port (e.g. 127.0.0.1:50051), got "${given.address}"`);
  }
  return { address, source: given.source };
}

/** Client TLS: NNUNET_CLIENT_TLS=1 (system roots), NNUNET_CLIENT_TLS_CA (server CA), NNUNET_CLIENT_TLS_CERT + _KEY (mTLS). */
function clientTls(env: NodeJS.ProcessEnv): ClientOptions['tls'] {
  const read = (name: string) => {
    const file = env[name];
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConnectionError(`${name}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const ca = read('NNUNET_CLIENT_TLS_CA');
  const cert = read('NNUNET_CLIENT_TLS_CERT');
  const key = read('NNUNET_CLIENT_TLS_KEY');
  if (Boolean(cert) !== Boolean(key)) throw new ConnectionError('client certificates need both NNUNET_CLIENT_TLS_CERT and NNUNET_CLIENT_TLS_KEY');
  if (ca || cert) return { ca, cert, key };
  return env.NNUNET_CLIENT_TLS === '1' || env.NNUNET_CLIENT_TLS === 'true' ? true : undefined;
}

function connectTimeoutS(env: NodeJS.ProcessEnv): number {
  const raw = env.NNUNET_CONNECT_TIMEOUT_S;
  if (raw === undefined || raw === '') return DEFAULT_CONNECT_TIMEOUT_S;
  const n = Number(raw);
  if (!(n > 0)) throw new ConnectionError(`NNUNET_CONNECT_TIMEOUT_S must be a positive number of seconds, got "${raw}"`);
  return n;
}

async function connectRemote(target: Target, args: ParsedArgs, env: NodeJS.ProcessEnv): Promise<Connection> {
  const token = typeof args.token === 'string' && args.token !== '' ? args.token : env.NNUNET_TOKEN || undefined;
  const client = new NnunetClient({ address: target.address, token, tls: clientTls(env) });
  const timeout = connectTimeoutS(env);
  try {
    // Fails at once when the port refuses, at the deadline when nothing answers at all.
    await client.serverInfo({ deadline: Date.now() + timeout * 1000 });
  } catch (err) {
    client.close();
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
      const why = e.code === grpc.status.DEADLINE_EXCEEDED ? `no answer within ${timeout} s` : e.details || e.message;
      throw new ConnectionError(`cannot reach the nnunet server at ${target.address} (from ${target.source}): ${why}. Is \`nnunet serve\` running there, and is the port open?`);
    }
    if (e.code === grpc.status.UNAUTHENTICATED) {
      throw new ConnectionError(`the nnunet server at ${target.address} refused the token: ${e.details}. Give a valid one with --token or NNUNET_TOKEN`);
    }
    throw err;
  }
  let closed = false;
  return {
    client,
    address: target.address,
    embedded: false,
    async close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}

/** Server log lines at warn and above, as plain text on the command's stderr. */
function quietLogger(io: CommandIO): DestinationStream {
  return {
    write(line: string) {
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string };
        io.stderr(`nnunet (embedded server) ${(entry.level ?? 40) >= 50 ? 'error' : 'warning'}: ${entry.msg ?? line.trim()}`);
      } catch {
        io.stderr(line.trimEnd());
      }
    },
  };
}

async function startEmbedded(io: CommandIO): Promise<Connection> {
  // Loaded only here: a command against a remote server does not load the server's stages.
  const [{ pino }, { loadConfig }, { startServer }, { openJobQueue }, { jobHooks }] = await Promise.all([
    import('pino'),
    import('../server/config.js'),
    import('../server/main.js'),
    import('../server/jobs/index.js'),
    import('../server/rpc/training.js'),
  ]);
  const token = randomBytes(24).toString('hex');
  const config = loadConfig(io.env, {
    host: '127.0.0.1',
    port: 0,
    metricsPort: -1,
    logLevel: 'warn',
    tokensFile: undefined,
    adminToken: token,
    readToken: undefined,
    tlsCertFile: undefined,
    tlsKeyFile: undefined,
    tlsCaFile: undefined,
    // Streams still open at the end belong to this process, which is leaving.
    shutdownGraceSeconds: 5,
  });
  const logger = pino({ level: 'warn' }, quietLogger(io));
  const jobsDir = mkdtempSync(join(tmpdir(), 'nnunet-cli-jobs-'));
  let queue: Awaited<ReturnType<typeof openJobQueue>> | undefined;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    // Its own SQLite store, even where NNUNET_DATABASE_URL names the replicas' shared one.
    const jobsEnv = { ...io.env, NNUNET_JOBS_DB: join(jobsDir, 'jobs.sqlite'), NNUNET_DATABASE_URL: '', NNUNET_REPLICA_ID: '' };
    queue = await openJobQueue(config.roots, logger, jobsEnv);
    server = await startServer(config, logger, jobHooks(queue));
  } catch (err) {
    await queue?.close();
    await queue?.store.close();
    rmSync(jobsDir, { recursive: true, force: true });
    throw err;
  }
  const address = `127.0.0.1:${server.grpcPort}`;
  const client = new NnunetClient({ address, token });
  let interrupted: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const interruptJobs = () => (interrupted ??= queue!.close());
  return {
    client,
    address,
    embedded: true,
    interruptJobs,
    close: () =>
      (closing ??= (async () => {
        client.close();
        try {
          await interruptJobs();
          await server!.stop();
        } finally {
          await queue!.store.close();
          rmSync(jobsDir, { recursive: true, force: true });
        }
      })()),
  };
}

/** Connects to the named server, or starts the embedded one. */
export async function connect(args: ParsedArgs, io: CommandIO): Promise<Connection> {
  const target = serverTarget(args, io.env);
  return target ? connectRemote(target, args, io.env) : startEmbedded(io);
}

export interface SessionOptions {
  /**
   * Handles Ctrl-C itself (count: 1 for the first, 2 for the second, ...). Without it the first
   * Ctrl-C aborts `signal`, the command ends with InterruptedError and the server is stopped.
   */
  onInterrupt?: (count: number, connection: Connection) => void;
}

/**
 * Runs `fn` with a connection and closes it afterwards, whatever happens; Ctrl-C while it runs
 * aborts the command (or goes to `onInterrupt`) so an embedded server is always stopped.
 */
export async function withConnection<T>(args: ParsedArgs, io: CommandIO, fn: (c: Connection, signal: AbortSignal) => Promise<T>, o: SessionOptions = {}): Promise<T> {
  const connection = await connect(args, io);
  const abort = new AbortController();
  let count = 0;
  const onSigint = () => {
    count++;
    if (o.onInterrupt) o.onInterrupt(count, connection);
    else if (count === 1) abort.abort(new InterruptedError());
    else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  try {
    const result = await fn(connection, abort.signal);
    if (abort.signal.aborted && !o.onInterrupt) throw abort.signal.reason;
    return result;
  } catch (err) {
    if (abort.signal.aborted && !o.onInterrupt) throw abort.signal.reason;
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await connection.close();
  }
}
