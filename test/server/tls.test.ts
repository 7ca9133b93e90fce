// TLS and mTLS by configuration: with NNUNET_TLS_CERT/KEY the server speaks only TLS; adding
// NNUNET_TLS_CA makes it demand a client certificate signed by that CA (openssl makes the test PKI).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NnunetClient } from '../../client/sdk/index.js';
import { tempDir } from '../helpers.js';
import { hasOpenssl, makePki, mtlsServerEnv } from './pki.js';
import { startServerProcess, type ServerProcess } from './server-process.js';

(hasOpenssl ? describe : describe.skip)('TLS and mTLS', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof tempDir>;
  let server: ServerProcess;
  const file = (name: string) => readFileSync(join(tmp.dir, name));

  before(async () => {
    tmp = tempDir();
    makePki(tmp.dir);
    server = await startServerProcess({
      NNUNET_HOME: tmp.dir,
      ...mtlsServerEnv(tmp.dir),
    });
  });

  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  it('serves a client that presents a certificate signed by the CA', async () => {
    // The name checked against the certificate; an IP address as TLS server name is deprecated.
    const channelOptions = { 'grpc.ssl_target_name_override': 'localhost' };
    const client = new NnunetClient({ address: server.address, tls: { ca: file('ca.crt'), cert: file('client.crt'), key: file('client.key') }, channelOptions });
    try {
      assert.match((await client.serverInfo()).version, /^\d+\./);
    } finally {
      client.close();
    }
  });

  it('refuses a client without a certificate, and a plaintext client', async () => {
    for (const tls of [{ ca: file('ca.crt') }, false] as const) {
      const client = new NnunetClient({ address: server.address, tls, channelOptions: { 'grpc.ssl_target_name_override': 'localhost' } });
      try {
        const err = (await client.serverInfo().then(
          () => assert.fail('the call should fail'),
          (e: grpc.ServiceError) => e,
        )) as grpc.ServiceError;
        assert.equal(err.code, grpc.status.UNAVAILABLE, err.details);
      } finally {
        client.close();
      }
    }
  });
});
