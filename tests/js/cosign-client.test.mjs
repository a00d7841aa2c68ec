// The browser's cosign client (static/js/cosign-client.js) against the golden vectors of the
// Python reference (tests/vectors/sm2_2p_golden.json), plus its refusals and its share storage.
// Run: node --test tests/js/   (needs static/vendor/cosign-deps.js: make deps)

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

const BUNDLE = new URL('../../static/vendor/cosign-deps.js', import.meta.url);
if (!existsSync(BUNDLE)) {
  throw new Error('static/vendor/cosign-deps.js is missing: run `make deps` (scripts/vendor-assets.sh builds it)');
}
const c = await import('../../static/js/cosign-client.js');

const VECTORS = JSON.parse(readFileSync(new URL('../vectors/sm2_2p_golden.json', import.meta.url), 'utf8')).cases;
const N = c.SM2_CURVE.n;
const G = c.SM2Point.BASE;
const big = (hex) => BigInt('0x' + hex);
const hex = c.bytesToHex;
const inv = (x) => powMod(x, N - 2n, N);

function powMod(base, exponent, modulus) {
  let result = 1n;
  base %= modulus;
  for (; exponent > 0n; exponent >>= 1n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
  }
  return result;
}

/** The server's half of the protocol (sm2_2p.ServerShare, without its checks' blinding), for tests. */
const server = {
  keygen(p1, d2) {
    return c.SM2Point.fromBytes(p1).multiply(inv(d2)).add(G.negate()).toBytes(false);
  },
  respond(q1, e, d2, k2 = c.randomScalar(), k3 = c.randomScalar()) {
    const x1 = c.SM2Point.fromBytes(q1).multiply(k3).add(G.multiply(k2)).x;
    const r = (e + x1) % N;
    return { r, s2: (d2 * k3) % N, s3: (d2 * (r + k2)) % N };
  },
};

/** A vector's signing run up to the server's answer: the share, a fresh nonce, P and e. */
function prepared(v) {
  const share = new c.ClientShare(big(v.d1));
  const context = c.signContext(v.session_token, big(v.e));
  const nonce = share.beginSign(context, { k1: big(v.k1), proofNonce: big(v.q1_proof_nonce) });
  return { share, nonce, p: v.p, e: big(v.e), response: { r: big(v.r), s2: big(v.s2), s3: big(v.s3) } };
}

describe('golden vectors (tests/vectors/sm2_2p_golden.json)', () => {
  assert.equal(VECTORS.length, 6);

  for (const v of VECTORS) {
    describe(v.name, () => {
      const share = new c.ClientShare(big(v.d1));
      const uid = c.hexToBytes(v.id);
      const message = c.hexToBytes(v.message);

      test('keygen: P1 = d1⁻¹·G and its proof for keygen_context', () => {
        assert.equal(hex(share.p1), v.p1);
        const context = c.keygenContext(v.user_id);
        assert.equal(new TextDecoder().decode(context), v.keygen_context);
        const { p1, proof } = share.keygenMessage(v.user_id, { nonce: big(v.keygen_proof_nonce) });
        assert.equal(hex(p1), v.p1);
        assert.equal(hex(proof), v.p1_proof);
        assert.ok(c.verifyKnowledge(v.p1, v.p1_proof, context));
        assert.ok(!c.verifyKnowledge(v.p1, v.p1_proof, c.keygenContext(v.user_id + 'x')));
      });

      test('the joint key: the server step gives P, and P = d·G', () => {
        assert.equal(hex(server.keygen(share.p1, big(v.d2))), v.p);
        assert.equal(G.multiply(big(v.d)).toHex(false), v.p);
      });

      test('Z_A, e and sign_context', () => {
        assert.equal(hex(c.za(v.p, uid)), v.za);
        assert.equal(c.digest(c.hexToBytes(v.p), message, uid), big(v.e));
        assert.equal(new TextDecoder().decode(c.signContext(v.session_token, big(v.e))), v.sign_context);
        assert.equal(new TextDecoder().decode(c.signContext(v.session_token, v.e)), v.sign_context);
      });

      test('sign: Q1 = k1·G, its proof, then s and the DER signature', () => {
        const { nonce, p, e, response } = prepared(v);
        assert.equal(hex(nonce.q1), v.q1);
        assert.equal(hex(nonce.proof), v.q1_proof);
        assert.ok(c.verifyKnowledge(nonce.q1, nonce.proof, c.signContext(v.session_token, e)));
        assert.ok(!c.verifyKnowledge(nonce.q1, nonce.proof, c.signContext(v.session_token, e + 1n)));
        assert.ok(!nonce.used);
        const { r, s, der } = share.finishSign(nonce, p, e, response);
        assert.ok(nonce.used);
        assert.equal(r, big(v.r));
        assert.equal(s, big(v.s));
        assert.equal(hex(der), v.signature);
        assert.equal(hex(c.encodeSignature(v.r, v.s)), v.signature);
      });

      test('the server response as hex strings, as JSON carries it', () => {
        const { nonce } = prepared(v);
        const { der } = share.finishSign(nonce, v.p, v.e, { r: v.r, s2: v.s2, s3: v.s3 });
        assert.equal(hex(der), v.signature);
      });

      test('the final signature verifies; a changed message or key does not', () => {
        assert.ok(c.verify(v.p, message, c.hexToBytes(v.signature), uid));
        assert.ok(c.verifyDigest(v.p, v.e, v.r, v.s));
        assert.deepEqual(c.decodeSignature(v.signature), { r: big(v.r), s: big(v.s) });
        assert.ok(!c.verify(v.p, c.concatBytes(message, Uint8Array.of(0)), v.signature, uid));
        assert.ok(!c.verifyDigest(v.p, big(v.e) ^ 1n, v.r, v.s));
        const other = VECTORS.find((w) => w.p !== v.p);
        assert.ok(!c.verifyDigest(other.p, v.e, v.r, v.s));
      });
    });
  }

  test('the DER lengths 70, 71 and 72 are all covered', () => {
    for (const length of [70, 71, 72]) {
      const v = VECTORS.find((w) => w.name === `der-${length}`);
      assert.equal(c.hexToBytes(v.signature).length, length);
      assert.equal(c.encodeSignature(v.r, v.s).length, length);
    }
  });
});

describe('finishSign refuses', () => {
  const v = VECTORS[0];

  for (const name of ['r', 's2', 's3']) {
    for (const [label, value] of [['0', 0n], ['n', N], ['n + 1', N + 1n]]) {
      test(`${name} = ${label}, and uses the nonce up`, () => {
        const { share, nonce, p, e, response } = prepared(v);
        assert.throws(() => share.finishSign(nonce, p, e, { ...response, [name]: value }), {
          name: 'CosignError',
          message: `server value ${name} is outside (0, n)`,
        });
        assert.ok(nonce.used);
        assert.throws(() => share.finishSign(nonce, p, e, response), /already used/);
      });
    }
  }

  test('a malformed response', () => {
    for (const response of [null, 'r', { r: 1n, s2: 1n }, { r: '12', s2: 1n, s3: 1n }, { r: 1.5, s2: 1n, s3: 1n }]) {
      const { share, nonce, p, e } = prepared(v);
      assert.throws(() => share.finishSign(nonce, p, e, response), c.CosignError);
    }
  });

  test('a response whose (r, s) does not verify: changed s2, s3 or r', () => {
    for (const name of ['r', 's2', 's3']) {
      const { share, nonce, p, e, response } = prepared(v);
      assert.throws(() => share.finishSign(nonce, p, e, { ...response, [name]: (response[name] % (N - 1n)) + 1n }), {
        message: "the server's response does not give a valid signature",
      });
    }
  });

  test('a response for another digest or another key', () => {
    let { share, nonce, p, e, response } = prepared(v);
    assert.throws(() => share.finishSign(nonce, p, e + 1n, response), /does not give a valid signature/);
    ({ share, nonce, p, e, response } = prepared(v));
    assert.throws(() => share.finishSign(nonce, VECTORS[1].p, e, response), /does not give a valid signature/);
  });

  test('a public key that is not a curve point', () => {
    const { share, nonce, e, response } = prepared(v);
    const bad = c.hexToBytes(v.p);
    bad[64] ^= 1;
    assert.throws(() => share.finishSign(nonce, bad, e, response), /not a point on the SM2 curve/);
    assert.ok(nonce.used);
  });

  test('s = 0 and s = n − r: RestartProtocol', () => {
    const d1 = big(v.d1);
    const k1 = big(v.k1);
    const r = big(v.r);
    // s = (d1·k1)·s2 + d1·s3 − r: with s2 = 1, s3 = (r − d1·k1)/d1 gives s = 0 and s3 = −k1 gives
    // s = n − r.
    for (const s3 of [((((r - d1 * k1) % N) + N) % N) * inv(d1) % N, N - k1]) {
      const { share, nonce, p, e } = prepared(v);
      assert.throws(() => share.finishSign(nonce, p, e, { r, s2: 1n, s3 }), { name: 'RestartProtocol' });
      assert.ok(nonce.used);
    }
  });

  test('a nonce is single-use, even after a valid signature', () => {
    const { share, nonce, p, e, response } = prepared(v);
    share.finishSign(nonce, p, e, response);
    assert.throws(() => share.finishSign(nonce, p, e, response), {
      name: 'CosignError',
      message: 'this nonce was already used; start a new signing run',
    });
  });

  test('something that is not a nonce from beginSign', () => {
    const { share, nonce, p, e, response } = prepared(v);
    const fake = { q1: nonce.q1, proof: nonce.proof };
    assert.throws(() => share.finishSign(fake, p, e, response), /already used/);
    assert.ok(!nonce.used);
  });
});

describe('random runs against a test server', () => {
  test('keygen, then two signatures, with fresh randomness everywhere', () => {
    for (let run = 0; run < 3; run++) {
      const user = `user-${run}`;
      const share = c.ClientShare.generate();
      const { p1, proof } = share.keygenMessage(user);
      assert.ok(c.verifyKnowledge(p1, proof, c.keygenContext(user)));
      const d2 = c.randomScalar();
      const p = server.keygen(p1, d2);
      const restored = c.ClientShare.fromBytes(share.toBytes());
      assert.equal(hex(restored.p1), hex(share.p1));
      const message = c.utf8(`合同 ${run}`);
      const e = c.digest(p, message);
      const context = c.signContext(`session-${run}`, e);
      const first = share.beginSign(context);
      const second = restored.beginSign(context);
      assert.notEqual(hex(first.q1), hex(second.q1));
      for (const [signer, nonce] of [[share, first], [restored, second]]) {
        assert.ok(c.verifyKnowledge(nonce.q1, nonce.proof, context));
        const { der } = signer.finishSign(nonce, p, e, server.respond(nonce.q1, e, d2));
        assert.ok(c.verify(p, message, der));
      }
    }
  });

  test('two proofs of the same statement differ (fresh proof nonces)', () => {
    const share = c.ClientShare.generate();
    const context = c.keygenContext('someone');
    assert.notEqual(hex(share.keygenProof(context)), hex(share.keygenProof(context)));
  });
});

describe('proofs of knowledge', () => {
  const v = VECTORS[0];
  const context = c.keygenContext(v.user_id);

  test('a changed c or z, c or z ≥ n, a wrong length, or a bad point: false', () => {
    const proof = c.hexToBytes(v.p1_proof);
    for (const index of [0, 31, 32, 63]) {
      const bad = proof.slice();
      bad[index] ^= 0x40;
      assert.ok(!c.verifyKnowledge(v.p1, bad, context));
    }
    const nBytes = c.bigIntToBytes(N);
    assert.ok(!c.verifyKnowledge(v.p1, c.concatBytes(nBytes, proof.subarray(32)), context));
    assert.ok(!c.verifyKnowledge(v.p1, c.concatBytes(proof.subarray(0, 32), nBytes), context));
    assert.ok(!c.verifyKnowledge(v.p1, proof.subarray(0, 63), context));
    assert.ok(!c.verifyKnowledge(v.q1, proof, context));
    assert.ok(!c.verifyKnowledge('04' + '00'.repeat(64), proof, context));
    assert.ok(!c.verifyKnowledge(v.p1.slice(0, 66), proof, context));
  });

  test('a proof for a point whose secret the prover does not know fails', () => {
    const wrongSecret = c.randomScalar();
    assert.ok(!c.verifyKnowledge(v.p1, c.proveKnowledge(wrongSecret, v.p1, context), context));
  });
});

describe('points, scalars and bytes', () => {
  const v = VECTORS[0];

  test('pointFromBytes accepts only valid uncompressed points', () => {
    assert.equal(c.pointFromBytes(v.p).toHex(false), v.p);
    const compressed = c.pointFromBytes(v.p).toBytes(true);
    assert.throws(() => c.pointFromBytes(compressed), /65 bytes, uncompressed/);
    assert.throws(() => c.pointFromBytes('04' + '00'.repeat(64)), /not a point/);
    assert.throws(() => c.pointFromBytes('04' + 'ff'.repeat(64)), /not a point/);
    assert.throws(() => c.pointFromBytes('zz'), /not a hex string/);
    assert.throws(() => c.pointFromBytes(42), c.CosignError);
  });

  test('shares outside [1, n − 1] or of the wrong size are refused', () => {
    for (const d1 of [0n, N, N + 1n, -1n]) assert.throws(() => new c.ClientShare(d1), /outside \[1, n-1\]/);
    assert.throws(() => c.ClientShare.fromBytes(new Uint8Array(31)), /32 bytes/);
    assert.throws(() => c.ClientShare.fromBytes(new Uint8Array(32)), /outside/);
    assert.equal(new c.ClientShare(N - 1n).toBytes().length, 32);
  });

  test('nothing but P1 shows when a share or nonce is serialised', () => {
    const share = new c.ClientShare(big(v.d1));
    assert.deepEqual(JSON.parse(JSON.stringify(share)), { p1: v.p1 });
    assert.ok(!JSON.stringify(share).includes(v.d1));
    const nonce = share.beginSign(c.utf8('ctx'), { k1: big(v.k1) });
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(nonce))), ['q1', 'proof']);
    assert.ok(!JSON.stringify(nonce).includes(v.k1));
  });

  test('randomScalar stays in [1, n − 1] and varies', () => {
    const seen = new Set();
    for (let i = 0; i < 200; i++) {
      const k = c.randomScalar();
      assert.ok(k >= 1n && k < N);
      seen.add(k);
    }
    assert.equal(seen.size, 200);
  });

  test('hex and integer helpers', () => {
    assert.equal(hex(c.hexToBytes('00ABff')), '00abff');
    assert.throws(() => c.hexToBytes('abc'), /not a hex string/);
    assert.equal(c.bytesToBigInt(c.bigIntToBytes(N - 1n)), N - 1n);
    assert.throws(() => c.bigIntToBytes(1n << 256n), /does not fit/);
    assert.equal(c.toScalar(v.d1), big(v.d1));
    assert.ok(c.constantTimeEqual(c.utf8('abc'), c.utf8('abc')));
    assert.ok(!c.constantTimeEqual(c.utf8('abc'), c.utf8('abd')));
    assert.equal(hex(c.sm3(c.utf8('abc'))), '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  });
});

describe('DER signatures', () => {
  const v = VECTORS[0];

  test('non-minimal, malformed or out-of-range encodings are refused', () => {
    const der = c.hexToBytes(v.signature);
    const cases = {
      'trailing byte': c.concatBytes(der, Uint8Array.of(0)),
      'wrong outer tag': Uint8Array.of(0x31, ...der.subarray(1)),
      'wrong length': Uint8Array.of(0x30, der[1] - 1, ...der.subarray(2)),
      truncated: der.subarray(0, der.length - 1),
      'extra leading zero': c.hexToBytes('3007' + '02020001' + '020101'),
      'negative r': c.hexToBytes('3006020180020101'),
      'r = 0': c.hexToBytes('3006020100020101'),
      'r = n': c.hexToBytes('3026022100' + N.toString(16) + '020101'),
    };
    for (const [label, bytes] of Object.entries(cases)) {
      assert.throws(() => c.decodeSignature(bytes), c.CosignError, label);
      assert.ok(!c.verify(v.p, c.hexToBytes(v.message), bytes), label);
    }
  });

  test('small values encode minimally', () => {
    assert.equal(hex(c.encodeSignature(1n, 0x80n)), '300702010102020080');
    assert.deepEqual(c.decodeSignature('300702010102020080'), { r: 1n, s: 0x80n });
    assert.throws(() => c.encodeSignature(0n, 1n), /outside/);
  });
});

// Known answers computed with Python: hashlib.pbkdf2_hmac('sm3', …), hmac with 'sm3', and
// cryptography's SM4-CBC, following the construction documented in cosign-client.js.
describe('KDFs and the PIN verifier', () => {
  test('PBKDF2-HMAC-SM3 matches hashlib.pbkdf2_hmac("sm3")', () => {
    const password = c.utf8('password');
    const salt = c.utf8('salt');
    assert.equal(
      hex(c.pbkdf2Sm3(password, salt, 2, 32)),
      'fee723a2bc966e11dffb66133f4e8df577383c78ade30e3298edbd3e54ed85b7',
    );
    assert.equal(
      hex(c.pbkdf2Sm3(password, salt, 1000, 40)),
      'e8b635a41dfe5aaab7cf828cff6f3608e22cac59ba16edd70e000b293d00bc9118504f57ab46673d',
    );
  });

  test('HKDF-SM3 (RFC 5869 with HMAC-SM3)', () => {
    const ikm = Uint8Array.from({ length: 22 }, (_, i) => i);
    const salt = Uint8Array.from({ length: 13 }, (_, i) => i);
    const info = Uint8Array.from({ length: 10 }, (_, i) => 0xf0 + i);
    assert.equal(
      hex(c.hkdfSm3(ikm, salt, info, 42)),
      '0d83625e1178bec7152c1f162ccd6420b41978ed24f0aaaefba3644f13b0f49fcf52d5fed31d97c3071b',
    );
  });

  test('pinVerifier: the known answer, deterministic for (pin, salt), different otherwise', async () => {
    const salt = c.hexToBytes('000102030405060708090a0b0c0d0e0f');
    const verifier = await c.pinVerifier('246810', salt);
    assert.equal(hex(verifier), 'e492edf4bfe8c0f3d1fe2e8d4fc7cf8eb14ed6d33ee4ad0c532e0121d5a9c078');
    assert.equal(hex(await c.pinVerifier('246810', hex(salt))), hex(verifier));
    assert.notEqual(hex(await c.pinVerifier('246811', salt)), hex(verifier));
    const otherSalt = salt.slice();
    otherSalt[15] ^= 1;
    assert.notEqual(hex(await c.pinVerifier('246810', otherSalt)), hex(verifier));
  });

  test('a short salt or an empty PIN is refused', async () => {
    await assert.rejects(c.pinVerifier('246810', new Uint8Array(15)), /at least 16 bytes/);
    await assert.rejects(c.pinVerifier('', new Uint8Array(16)), /non-empty/);
    assert.equal(c.newSalt().length, 16);
  });
});

describe('wrapping the share', () => {
  const d1 = c.hexToBytes(VECTORS[0].d1);
  const salt = c.hexToBytes('f0e1d2c3b4a5968778695a4b3c2d1e0f');
  const deviceSecret = c.hexToBytes('11'.repeat(32));
  const pin = '246810';

  test('the known answer (fixed IV)', async () => {
    const iv = c.hexToBytes('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf');
    const wrapped = await c.wrapShare(d1, pin, deviceSecret, salt, { iv });
    assert.equal(
      hex(wrapped),
      '01a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0025e15591b9a5704c057c347351501eeb61a69d749c66dfa77877c612e168d6' +
        '924bfd79434c2172038693af2bb1c243c9958de995cabce5160c53a5180ab49f',
    );
    assert.equal(wrapped.length, c.WRAPPED_LENGTH);
  });

  test('round trip, with a fresh IV each time and no trace of d1', async () => {
    const first = await c.wrapShare(d1, pin, deviceSecret, salt);
    const second = await c.wrapShare(d1, pin, hex(deviceSecret), hex(salt));
    assert.notEqual(hex(first), hex(second));
    assert.ok(!hex(first).includes(hex(d1).slice(0, 16)));
    assert.equal(hex(await c.unwrapShare(first, pin, deviceSecret, salt)), hex(d1));
    assert.equal(hex(await c.unwrapShare(hex(second), pin, deviceSecret, salt)), hex(d1));
    const share = c.ClientShare.fromBytes(await c.unwrapShare(first, pin, deviceSecret, salt));
    assert.equal(hex(share.p1), VECTORS[0].p1);
  });

  test('a wrong PIN, device secret or salt, or a changed blob: one and the same error', async () => {
    const wrapped = await c.wrapShare(d1, pin, deviceSecret, salt);
    const otherSecret = deviceSecret.slice();
    otherSecret[0] ^= 1;
    const otherSalt = salt.slice();
    otherSalt[0] ^= 1;
    const attempts = [
      c.unwrapShare(wrapped, '246811', deviceSecret, salt),
      c.unwrapShare(wrapped, pin, otherSecret, salt),
      c.unwrapShare(wrapped, pin, deviceSecret, otherSalt),
    ];
    for (const index of [0, 1, 20, 60, 80]) {
      const changed = wrapped.slice();
      changed[index] ^= 1;
      attempts.push(c.unwrapShare(changed, pin, deviceSecret, salt));
    }
    attempts.push(c.unwrapShare(wrapped.subarray(1), pin, deviceSecret, salt));
    for (const attempt of attempts) {
      await assert.rejects(attempt, { name: 'UnwrapError', message: 'the key share could not be unwrapped' });
    }
  });

  test('inputs that cannot be right are refused before any work', async () => {
    await assert.rejects(c.wrapShare(d1, pin, new Uint8Array(16), salt), /device secret must be at least 32 bytes/);
    await assert.rejects(c.wrapShare(new Uint8Array(32), pin, deviceSecret, salt), /outside/);
    await assert.rejects(c.wrapShare(d1.subarray(1), pin, deviceSecret, salt), /32 bytes/);
  });
});

describe('IndexedDB persistence', () => {
  test('outside a browser it fails cleanly (tests/e2e/test_cosign_client.py covers Chromium)', async () => {
    assert.equal(globalThis.indexedDB, undefined);
    await assert.rejects(c.loadShareRecord('ks-1'), { name: 'CosignError', message: 'IndexedDB is not available' });
  });
});
