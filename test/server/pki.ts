// A throwaway PKI for the TLS tests, made with openssl: a CA, a server certificate for
// 127.0.0.1/localhost and a client certificate (clientAuth), both signed by the CA.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

/** Server settings for mTLS with the files makePki wrote into `dir`. */
export function mtlsServerEnv(dir: string): NodeJS.ProcessEnv {
  return { NNUNET_TLS_CERT: join(dir, 'server.crt'), NNUNET_TLS_KEY: join(dir, 'server.key'), NNUNET_TLS_CA: join(dir, 'ca.crt') };
}

/** Writes ca.crt, server.{crt,key} and client.{crt,key} into `dir`. */
export function makePki(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=nnunet-test-ca');
  for (const [name, san] of [
    ['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    writeFileSync(join(dir, `${name}.ext`), san + '\n');
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  }
}
