// 扫一扫 inside WeChat Work (static/js/wxwork-scan.js): which scanned texts the page follows. Only
// the two links the portal's QR codes carry, on the page's own origin, under the phone pages' root.
// Run: node --test tests/js/

import assert from 'node:assert/strict';
import { test } from 'node:test';

const { portalLink } = await import('../../static/js/wxwork-scan.js');

const ORIGIN = 'https://esign.example.edu.cn';
const TOKEN = 'Qm9vdHN0cmFwX3Rva2VuXzAxMjM0NTY3ODlhYmNkZWZnaA';
const link = (text, base = '/m/') => portalLink(text, ORIGIN, base);

test('a sign request link of this portal opens the sign request', () => {
  assert.equal(link(`${ORIGIN}/m/sign/${TOKEN}`), `/m/sign/${TOKEN}`);
  assert.equal(link(`  ${ORIGIN}/m/sign/${TOKEN}\n`), `/m/sign/${TOKEN}`);
  assert.equal(link(`${ORIGIN}/m/sign/${TOKEN}#x`), `/m/sign/${TOKEN}`); // the fragment is not followed
});

test('an activation link of this portal opens the activation with its code', () => {
  assert.equal(link(`${ORIGIN}/m/activate?code=ABCD2345`), '/m/activate?code=ABCD2345');
  assert.equal(link(`${ORIGIN}/m/activate?code=ABCD-2345`), '/m/activate?code=ABCD-2345');
});

test('the phone pages may live under a prefix', () => {
  assert.equal(link(`${ORIGIN}/esign/m/sign/${TOKEN}`, '/esign/m/'), `/esign/m/sign/${TOKEN}`);
  assert.equal(link(`${ORIGIN}/m/sign/${TOKEN}`, '/esign/m/'), null);
});

test('anything else is refused', () => {
  for (const text of [
    '',
    'ABCD2345',
    `/m/sign/${TOKEN}`, // not a full link
    `https://evil.example/m/sign/${TOKEN}`,
    `http://esign.example.edu.cn/m/sign/${TOKEN}`, // another scheme is another origin
    `${ORIGIN}:8443/m/sign/${TOKEN}`,
    `https://esign.example.edu.cn.evil.example/m/sign/${TOKEN}`,
    `https://esign.example.edu.cn@evil.example/m/sign/${TOKEN}`,
    `javascript:location='${ORIGIN}/m/sign/${TOKEN}'`,
    `${ORIGIN}/m/sign/`,
    `${ORIGIN}/m/sign/${TOKEN}/more`,
    `${ORIGIN}/m/sign/${TOKEN}?next=https://evil.example`,
    `${ORIGIN}/m/sign/a%2F..%2F..%2Flogout`,
    `${ORIGIN}/m/activate`,
    `${ORIGIN}/m/activate?code=`,
    `${ORIGIN}/m/activate?code=ABCD2345&next=https://evil.example`,
    `${ORIGIN}/m/activate?code=<script>`,
    `${ORIGIN}/m/mine`,
    `${ORIGIN}/logout`,
    `${ORIGIN}/m/../logout`,
  ]) {
    assert.equal(link(text), null, text);
  }
});
