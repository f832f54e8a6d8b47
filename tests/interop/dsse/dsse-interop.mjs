// A second DSSE implementation for Cairn's provenance tests: the pre-authentication encoding is @sigstore/core's,
// the Ed25519 signatures Node's crypto. Cairn's tests run it as a process (tests/Cairn.Trust.Tests/DsseInteropTests.cs).
//   node dsse-interop.mjs pae TYPE BODY             -> the PAE bytes on stdout
//   node dsse-interop.mjs verify FILE PUBKEY_BASE64 -> checks every envelope of FILE (one per line); exit 1 if one fails
//   node dsse-interop.mjs sign PAYLOAD_FILE TYPE OUT -> writes an envelope signed by a fresh key; prints its raw public key (base64)
import { readFileSync, writeFileSync } from 'node:fs';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { dsse } from '@sigstore/core';

const [command, ...args] = process.argv.slice(2);

function publicKeyFromRaw(base64) {
  const x = Buffer.from(base64, 'base64').toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

if (command === 'pae') {
  const [type, body] = args;
  process.stdout.write(dsse.preAuthEncoding(type, Buffer.from(body, 'utf-8')));
} else if (command === 'verify') {
  const [file, publicKey] = args;
  const key = publicKeyFromRaw(publicKey);
  const lines = readFileSync(file, 'utf-8').split('\n').filter((l) => l.trim() !== '');
  let failed = 0;
  lines.forEach((line, i) => {
    const envelope = JSON.parse(line);
    const pae = dsse.preAuthEncoding(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
    const ok = envelope.signatures.some((s) => verify(null, pae, key, Buffer.from(s.sig, 'base64')));
    if (!ok) failed++;
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf-8'));
    console.log(`${ok ? 'verified' : 'BAD'} ${i + 1} ${statement.predicateType} ${statement.subject?.[0]?.name}`);
  });
  process.exit(failed === 0 && lines.length > 0 ? 0 : 1);
} else if (command === 'sign') {
  const [payloadFile, type, out] = args;
  const payload = readFileSync(payloadFile);
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const sig = sign(null, dsse.preAuthEncoding(type, payload), privateKey);
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url').toString('base64');
  writeFileSync(out, JSON.stringify({ payloadType: type, payload: payload.toString('base64'), signatures: [{ keyid: 'node', sig: sig.toString('base64') }] }) + '\n');
  console.log(raw);
} else {
  console.error('usage: dsse-interop.mjs pae|verify|sign ...');
  process.exit(2);
}
