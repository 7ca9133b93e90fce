// A private PostgreSQL for tests: Debian's postgresql-15 binaries (scripts/setup.sh installs them)
// run a throw-away cluster in a temporary folder, listening on 127.0.0.1 at a free port with trust
// authentication, fsync off; stopped and removed at the end. initdb refuses to run as root, so as
// root the cluster belongs to the `postgres` system user (runuser). Tests that need it skip, with
// the reason, only when the binaries are missing.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const POSTGRES_BIN = process.env.NNUNET_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresUnavailable(): string | undefined {
  for (const tool of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(POSTGRES_BIN, tool))) return `PostgreSQL binaries not found (${join(POSTGRES_BIN, tool)}); install postgresql-15 (scripts/setup.sh) or set NNUNET_POSTGRES_BIN`;
  }
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0) return 'running as root and there is no `postgres` user to run initdb as';
  return undefined;
}

export interface PostgresFixture {
  port: number;
  /** A new, empty database on the cluster; its URL. */
  createDatabase(): Promise<string>;
  stop(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startPostgres(): Promise<PostgresFixture> {
  const why = postgresUnavailable();
  if (why) throw new Error(why);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'nnunet-pg-'));
  if (asRoot) {
    const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const run = (tool: string, args: string[]) => {
    const cmd = asRoot ? ['runuser', ['-u', 'postgres', '--', join(POSTGRES_BIN, tool), ...args]] as const : [join(POSTGRES_BIN, tool), args] as const;
    const r = spawnSync(cmd[0], [...cmd[1]], { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const options = [`-p ${port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories=${dir}`, '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c max_connections=100'].join(' ');
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stop);
    try {
      run('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A test run that dies still stops its cluster.
  process.on('exit', stop);
  try {
    run('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(dir, 'postgres.log'), '-o', options]);
  } catch (err) {
    stop();
    throw err;
  }
  let n = 0;
  const base = `postgres://postgres@127.0.0.1:${port}`;
  return {
    port,
    async createDatabase() {
      const name = `nnunet_test_${process.pid}_${++n}`;
      const admin = new pg.Client({ connectionString: `${base}/postgres` });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `${base}/${name}`;
    },
    stop,
  };
}

/**
 * Starts a private PostgreSQL before the enclosing describe's tests and stops it after them; the
 * tests are skipped, with the reason printed, where the binaries are missing. Returns the fixture's getter.
 */
export function usePostgres(): () => PostgresFixture {
  let fixture: PostgresFixture | undefined;
  before(async function () {
    const why = postgresUnavailable();
    if (why) {
      console.log(`      PostgreSQL tests skipped: ${why}`);
      return this.skip();
    }
    fixture = await startPostgres();
  });
  after(() => fixture?.stop());
  return () => {
    if (!fixture) throw new Error('PostgreSQL is not running (usePostgres before() has not run)');
    return fixture;
  };
}
