"""The cosign client (static/js/cosign-client.js) in Chromium: the module and its vendored bundle
load as a page loads them, one golden vector comes out byte for byte, and the wrapped share
survives an IndexedDB round trip and a reload."""

import json
from pathlib import Path

import pytest
from flask import Response

pytestmark = pytest.mark.e2e

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sm2_2p_golden.json"

# A golden vector through every client step, then the share's storage path as the mobile page
# will run it: verifier, wrap, save, load, unwrap, a wrong PIN, delete. Reports JSON in #result.
PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>cosign client</title></head>
<body><pre id="result"></pre>
<script type="application/json" id="vector">__VECTOR__</script>
<script type="module">
import * as cosign from '/static/js/cosign-client.js';

const v = JSON.parse(document.getElementById('vector').textContent);
const out = {};
const hex = cosign.bytesToHex;
const big = (value) => BigInt('0x' + value);
try {
  const share = new cosign.ClientShare(big(v.d1));
  const keygen = share.keygenMessage(v.user_id, { nonce: big(v.keygen_proof_nonce) });
  out.p1 = hex(keygen.p1);
  out.p1_proof = hex(keygen.proof);
  out.za = hex(cosign.za(v.p, cosign.hexToBytes(v.id)));
  const e = cosign.digest(v.p, cosign.hexToBytes(v.message), cosign.hexToBytes(v.id));
  out.e = e.toString(16).padStart(64, '0');
  const nonce = share.beginSign(cosign.signContext(v.session_token, e), { k1: v.k1, proofNonce: v.q1_proof_nonce });
  out.q1 = hex(nonce.q1);
  out.q1_proof = hex(nonce.proof);
  const response = { r: v.r, s2: v.s2, s3: v.s3 };
  out.signature = hex(share.finishSign(nonce, v.p, e, response).der);
  const [message, uid] = [cosign.hexToBytes(v.message), cosign.hexToBytes(v.id)];
  out.verifies = cosign.verify(v.p, message, cosign.hexToBytes(out.signature), uid);
  try {
    share.finishSign(nonce, v.p, e, response);
    out.reuse = 'accepted';
  } catch (error) {
    out.reuse = error.message;
  }

  const [salt, verifierSalt, deviceSecret] = [cosign.newSalt(), cosign.newSalt(), cosign.randomBytes(32)];
  let start = performance.now();
  out.verifier = hex(await cosign.pinVerifier('246810', verifierSalt));
  out.verifier_ms = performance.now() - start;
  const wrapped = await cosign.wrapShare(share.toBytes(), '246810', deviceSecret, salt);
  await cosign.saveShareRecord({ keySharePublicId: 'ks-e2e', publicKey: v.p, wrapped, salt, verifierSalt });
  const loaded = await cosign.loadShareRecord('ks-e2e');
  out.loaded = {
    publicKey: loaded.publicKey,
    types: [loaded.wrapped, loaded.salt, loaded.verifierSalt].map((value) => value.constructor.name),
    same: hex(loaded.wrapped) === hex(wrapped) && hex(loaded.salt) === hex(salt),
  };
  out.verifier_again = hex(await cosign.pinVerifier('246810', loaded.verifierSalt));
  start = performance.now();
  const d1 = await cosign.unwrapShare(loaded.wrapped, '246810', deviceSecret, loaded.salt);
  const restored = cosign.ClientShare.fromBytes(d1);
  out.unwrap_ms = performance.now() - start;
  out.restored_p1 = hex(restored.p1);
  try {
    await cosign.unwrapShare(loaded.wrapped, '135790', deviceSecret, loaded.salt);
    out.wrong_pin = 'unwrapped';
  } catch (error) {
    out.wrong_pin = error.name;
  }
  out.listed = (await cosign.listShareRecords()).map((record) => record.keySharePublicId);
  await cosign.deleteShareRecord('ks-e2e');
  out.after_delete = await cosign.loadShareRecord('ks-e2e');
} catch (error) {
  out.error = String((error && error.stack) || error);
}
document.getElementById('result').textContent = JSON.stringify(out);
document.body.dataset.done = '1';
</script></body></html>
"""


def vector(name):
    return next(case for case in json.loads(VECTORS.read_text(encoding="utf-8"))["cases"] if case["name"] == name)


@pytest.fixture
def cosign_page(app, live_server):
    """The URL of the test page, run on the vector with a non-ASCII message."""
    case = vector("der-71")
    html = PAGE.replace("__VECTOR__", json.dumps(case).replace("</", "<\\/"))
    app.add_url_rule("/_e2e/cosign-client", "e2e_cosign_client", lambda: Response(html, mimetype="text/html"))
    return live_server + "/_e2e/cosign-client", case


def test_the_client_reproduces_a_golden_vector_and_keeps_its_share_in_indexeddb(browser, cosign_page):
    url, case = cosign_page
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("body[data-done]", timeout=30_000)
    result = json.loads(page.locator("#result").text_content())
    assert "error" not in result, result.get("error")
    assert not errors

    for name in ("p1", "p1_proof", "za", "e", "q1", "q1_proof", "signature"):
        assert result[name] == case[name], name
    assert result["verifies"] is True
    assert result["reuse"] == "this nonce was already used; start a new signing run"

    assert len(result["verifier"]) == 64 and result["verifier_again"] == result["verifier"]
    assert result["loaded"] == {"publicKey": case["p"], "types": ["Uint8Array"] * 3, "same": True}
    assert result["restored_p1"] == case["p1"]
    assert result["wrong_pin"] == "UnwrapError"
    assert result["listed"] == ["ks-e2e"]
    assert result["after_delete"] is None
    print(f"PBKDF2-HMAC-SM3 in Chromium: verifier {result['verifier_ms']:.0f} ms, unwrap {result['unwrap_ms']:.0f} ms")
    page.close()


def test_a_saved_share_record_survives_a_reload(browser, cosign_page):
    url, case = cosign_page
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-done]", timeout=30_000)
    record = {
        "keySharePublicId": "ks-reload",
        "publicKey": case["p"],
        "wrapped": "01" + "ab" * 80,
        "salt": "cd" * 16,
        "verifierSalt": "ef" * 16,
    }
    page.evaluate(
        """async (record) => {
            const cosign = await import('/static/js/cosign-client.js');
            await cosign.saveShareRecord(record);
        }""",
        record,
    )
    page.reload()
    stored = page.evaluate(
        """async () => {
            const cosign = await import('/static/js/cosign-client.js');
            const record = await cosign.loadShareRecord('ks-reload');
            const hex = (value) => cosign.bytesToHex(value);
            const plain = {...record, wrapped: hex(record.wrapped), salt: hex(record.salt),
                           verifierSalt: hex(record.verifierSalt)};
            await cosign.deleteShareRecord('ks-reload');
            return plain;
        }"""
    )
    assert stored == record
    refused = page.evaluate(
        """async () => {
            const cosign = await import('/static/js/cosign-client.js');
            try {
                await cosign.saveShareRecord({keySharePublicId: 'x', publicKey: '04' + '00'.repeat(64),
                                              wrapped: new Uint8Array(81), salt: new Uint8Array(16),
                                              verifierSalt: new Uint8Array(16)});
                return 'saved';
            } catch (error) {
                return error.message;
            }
        }"""
    )
    assert refused == "public key is not a point on the SM2 curve"
    page.close()
