/**
 * The cosign app's pages (templates/cosign/m_*.html): activation, change of PIN, confirming a sign
 * request, and the "is my key on this phone" notice. The cryptography is cosign-client.js; this
 * file only moves values between the page, that library, IndexedDB and the server's JSON API
 * (portal/cosign/views.py). Every POST carries the page's CSRF token (X-CSRFToken).
 *
 * What the phone keeps (IndexedDB, one record per key share, cosign-client.js's ShareRecord): d1
 * wrapped under the PIN and the device secret, the wrap salt and the PIN-verifier salt. The
 * verifier salt never changes for a key share, so an old and a new PIN are checked alike. The PIN
 * itself and the device secret are never stored.
 *
 * Auto-sign window (自动签名时间): after a PIN check inside a window, the page re-wraps d1 under a
 * fresh random window key (in place of the PIN) and the same device secret, and keeps that key
 * and blob in sessionStorage until the window ends. Inside the window the server releases the
 * device secret without a verifier; the window key opens the blob. The PIN is never kept; closing
 * the tab forgets the window key; and without the server (which stops releasing the device secret
 * when the window closes) the blob opens for nobody.
 */

import * as cc from './cosign-client.js';

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content ?? '';
const API = document.querySelector('meta[name="cosign-api"]')?.content ?? '/m/api';
const MAX_RUNS = 3; // a protocol restart happens with probability ~2/n per run
const hex = cc.bytesToHex;

// --- talking to the server ------------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status, body = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

const FALLBACK = {
  0: '网络连接失败，请检查网络后重试',
  400: '页面已过期，请刷新页面后重试',
  401: '登录已过期，请重新登录',
  429: '操作过于频繁，请稍后再试',
};

async function post(path, body = {}) {
  let response;
  try {
    response = await fetch(API + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': CSRF },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(FALLBACK[0], 0);
  }
  const json = (response.headers.get('Content-Type') || '').includes('application/json');
  const data = json ? await response.json() : null;
  if (response.ok && data) return data;
  throw new ApiError(data?.error || FALLBACK[response.status] || '系统繁忙，请稍后重试', response.status, data || {});
}

/** One protocol session to its end: Q1 → (r, s2, s3) → the checked signature → complete. */
async function runSession(share, publicKey, session, { csr = false } = {}) {
  const e = BigInt('0x' + session.digest);
  // The server computes e; the phone checks it is the digest of the message it was shown, and
  // that a certificate request is for this very key.
  if (cc.digest(publicKey, cc.hexToBytes(session.message)) !== e) throw new Error('digest mismatch');
  if (csr && !session.message.includes(publicKey.slice(2))) throw new Error('request for another key');
  const nonce = share.beginSign(cc.signContext(session.token, e));
  const response = await post(`/sign/${session.token}/answer`, { q1: hex(nonce.q1), proof: hex(nonce.proof) });
  const { der } = share.finishSign(nonce, publicKey, e, response);
  return post(`/sign/${session.token}/complete`, { signature: hex(der) });
}

// --- the page's form --------------------------------------------------------------------------------

/** The form's message line, progress line and busy state. */
class FormState {
  constructor(form) {
    this.form = form;
    this.error = form.querySelector('[data-error]');
    this.progress = form.querySelector('[data-progress]');
    this.button = form.querySelector('button[type=submit]');
  }

  fail(message) {
    this.progress.hidden = true;
    this.error.textContent = message;
    this.error.hidden = false;
  }

  busy(message) {
    this.error.hidden = true;
    this.progress.textContent = message;
    this.progress.hidden = false;
    this.button.disabled = true;
  }

  idle() {
    this.progress.hidden = true;
    this.button.disabled = false;
  }

  value(name) {
    return this.form.elements[name]?.value ?? '';
  }
}

/** What is wrong with a new PIN and its repetition, or null. The rule of the manual: 6~12 位字母、数字组合. */
function pinProblem(pin, repeated) {
  if (!pin) return '请输入证书密码';
  if (!/^[A-Za-z0-9]*$/.test(pin)) return '证书密码只能包含字母和数字';
  if (pin.length < 6 || pin.length > 12) return '证书密码须为 6~12 位';
  if (!/[A-Za-z]/.test(pin) || !/[0-9]/.test(pin)) return '证书密码须同时包含字母和数字';
  if (pin !== repeated) return '两次输入的密码不一致';
  return null;
}

function explain(error) {
  if (error instanceof ApiError) return error.message;
  if (error instanceof cc.UnwrapError) return '本机保存的证书密钥已损坏，请在电脑端点击【协同签名工具】重新下载证书';
  if (error?.name === 'QuotaExceededError' || /IndexedDB/.test(error?.message ?? '')) {
    return '无法在本机保存证书密钥，请关闭无痕浏览或更换浏览器后重试';
  }
  return '签名数据校验失败，请重试';
}

function submitting(form, work) {
  const state = new FormState(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await work(state);
    } catch (error) {
      state.fail(explain(error));
      state.button.disabled = Boolean(error instanceof ApiError && error.body.locked); // locked: nothing to retry
      return;
    }
    state.idle();
  });
}

function show(id) {
  document.getElementById(id).hidden = false;
}

// --- activation (设置证书密码 → 证书下载成功) ----------------------------------------------------

// After the key was made and stored, the certificate step may still fail (network, server): the
// code is spent by then, so 【确定】 again resumes with this key instead of starting over.
let enrolled = null;

async function activate(state) {
  const { form } = state;
  const pin = state.value('pin');
  const problem = pinProblem(pin, state.value('pin2'));
  if (problem) return state.fail(problem);

  if (!enrolled) {
    state.busy('正在生成密钥…');
    const share = cc.ClientShare.generate();
    const { p1, proof } = share.keygenMessage(form.dataset.user);
    const verifierSalt = cc.newSalt();
    const salt = cc.newSalt();
    const verifier = await cc.pinVerifier(pin, verifierSalt);
    const activation = await post('/activate', {
      code: form.dataset.code,
      p1: hex(p1),
      proof: hex(proof),
      verifier: hex(verifier),
    });

    state.busy('正在保存证书密钥…');
    const wrapped = await cc.wrapShare(share.toBytes(), pin, activation.device_secret, salt);
    const keySharePublicId = activation.key_share;
    await cc.saveShareRecord({ keySharePublicId, publicKey: activation.public_key, wrapped, salt, verifierSalt });
    enrolled = { share, keySharePublicId, publicKey: activation.public_key, session: activation.session };
    form.elements.pin.readOnly = form.elements.pin2.readOnly = true; // the key is wrapped under this PIN now
  }

  state.busy('正在申请证书…');
  const { share, keySharePublicId, publicKey } = enrolled;
  for (let run = 1; ; run++) {
    const session = enrolled.session ?? (await post(`/activate/${keySharePublicId}/csr`)).session;
    enrolled.session = null; // a session runs once; a retry opens a new one
    try {
      await runSession(share, publicKey, session, { csr: true });
      break;
    } catch (error) {
      if (!(error instanceof cc.RestartProtocol) || run >= MAX_RUNS) throw error;
    }
  }
  // The server retired this person's earlier keys; their records are of no use on this phone.
  for (const record of await cc.listShareRecords()) {
    if (record.keySharePublicId !== keySharePublicId) await cc.deleteShareRecord(record.keySharePublicId);
  }
  form.hidden = true;
  show('pin-done');
}

// --- the PIN and the auto-sign window ------------------------------------------------------------

const windowKey = (keySharePublicId) => `esign-portal/cosign/window/${keySharePublicId}`;

function loadWindow(keySharePublicId) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(windowKey(keySharePublicId)) || 'null');
    if (saved && saved.until > Date.now()) return saved;
  } catch {
    // unreadable: treated as no window
  }
  forgetWindow(keySharePublicId);
  return null;
}

function forgetWindow(keySharePublicId) {
  try {
    sessionStorage.removeItem(windowKey(keySharePublicId));
  } catch {
    // storage disabled: nothing was kept
  }
}

async function rememberWindow(record, d1, unlocked) {
  if (!unlocked.window_ends_at) return;
  const key = hex(cc.randomBytes(32));
  const salt = cc.newSalt();
  const wrapped = await cc.wrapShare(d1, key, unlocked.device_secret, salt);
  const saved = { key, salt: hex(salt), wrapped: hex(wrapped), until: Date.parse(unlocked.window_ends_at) };
  try {
    sessionStorage.setItem(windowKey(record.keySharePublicId), JSON.stringify(saved));
  } catch {
    // storage disabled: the next confirmation asks for the PIN, which is the safe side
  }
}

/** d1 after a PIN check; remembers the auto-sign window if one opened. */
async function shareWithPin(record, pin, state) {
  state.busy('正在验证证书密码…');
  const verifier = await cc.pinVerifier(pin, record.verifierSalt);
  const unlocked = await post('/unlock', { key_share: record.keySharePublicId, verifier: hex(verifier) });
  const d1 = await cc.unwrapShare(record.wrapped, pin, unlocked.device_secret, record.salt);
  await rememberWindow(record, d1, unlocked);
  return cc.ClientShare.fromBytes(d1);
}

/** d1 inside the auto-sign window, without the PIN; null when the window has closed. */
async function shareInWindow(record, saved, state) {
  state.busy('正在签署…');
  let unlocked;
  try {
    unlocked = await post('/unlock', { key_share: record.keySharePublicId });
  } catch (error) {
    if (error instanceof ApiError && error.body.pin_required) return null;
    throw error;
  }
  try {
    return cc.ClientShare.fromBytes(await cc.unwrapShare(saved.wrapped, saved.key, unlocked.device_secret, saved.salt));
  } catch (error) {
    if (error instanceof cc.UnwrapError) return null; // a stale window blob: ask for the PIN
    throw error;
  }
}

async function loadRecord(keySharePublicId) {
  const record = await cc.loadShareRecord(keySharePublicId);
  if (!record) {
    throw new ApiError('本机没有保存您的证书密钥，无法在本机操作。请在电脑端点击【协同签名工具】重新下载证书', 0);
  }
  return record;
}

// --- 修改证书密码 --------------------------------------------------------------------------------------

async function changePin(state) {
  const { form } = state;
  const old = state.value('old_pin');
  const pin = state.value('pin');
  if (!old) return state.fail('请输入原证书密码');
  const problem = pinProblem(pin, state.value('pin2'));
  if (problem) return state.fail(problem);
  if (old === pin) return state.fail('新密码不能与原密码相同');

  const record = await loadRecord(form.dataset.keyShare);
  state.busy('正在验证原证书密码…');
  const oldVerifier = await cc.pinVerifier(old, record.verifierSalt);
  const unlocked = await post('/unlock', { key_share: record.keySharePublicId, verifier: hex(oldVerifier) });
  const d1 = await cc.unwrapShare(record.wrapped, old, unlocked.device_secret, record.salt);

  state.busy('正在设置新证书密码…');
  const salt = cc.newSalt();
  const wrapped = await cc.wrapShare(d1, pin, unlocked.device_secret, salt);
  const newVerifier = await cc.pinVerifier(pin, record.verifierSalt);
  // The server first, then this phone: the server stores the new verifier only after checking the
  // old one again, and a refusal leaves the phone's record as it was.
  await post('/pin', {
    key_share: record.keySharePublicId,
    old_verifier: hex(oldVerifier),
    new_verifier: hex(newVerifier),
  });
  await cc.saveShareRecord({ ...record, wrapped, salt });
  forgetWindow(record.keySharePublicId);
  form.hidden = true;
  show('pin-done');
}

// --- 确认签署 ----------------------------------------------------------------------------------------

function setUpSign(form) {
  const keySharePublicId = form.dataset.keyShare;
  const pinField = form.querySelector('[data-pin-field]');
  const windowNote = form.querySelector('[data-window-note]');
  const askForPin = () => {
    forgetWindow(keySharePublicId);
    pinField.hidden = false;
    windowNote.hidden = true;
  };
  if (form.dataset.inWindow === '1' && loadWindow(keySharePublicId)) {
    pinField.hidden = true;
    windowNote.hidden = false;
  }

  submitting(form, async (state) => {
    const record = await loadRecord(keySharePublicId);
    let share = null;
    const saved = pinField.hidden ? loadWindow(keySharePublicId) : null;
    if (saved) {
      share = await shareInWindow(record, saved, state);
      if (!share) {
        askForPin();
        return state.fail('自动签名时间已结束，请输入证书密码');
      }
    } else {
      const pin = state.value('pin');
      if (!pin) return state.fail('请输入证书密码');
      share = await shareWithPin(record, pin, state);
    }

    state.busy('正在签署…');
    for (let run = 1; ; run++) {
      const started = await post(`/sign-requests/${form.dataset.token}/start`);
      try {
        for (const session of started.sessions) await runSession(share, record.publicKey, session);
        break;
      } catch (error) {
        if (!(error instanceof cc.RestartProtocol) || run >= MAX_RUNS) throw error;
      }
    }
    form.hidden = true;
    show('sign-done');
  });
}

// --- "is my key on this phone?" -------------------------------------------------------------------

async function checkShare(notice) {
  let record = null;
  try {
    record = await cc.loadShareRecord(notice.dataset.checkShare);
  } catch {
    // no IndexedDB: the key cannot be here either
  }
  notice.hidden = record !== null;
}

// --- wiring -------------------------------------------------------------------------------------------

const form = document.querySelector('form[data-cosign]');
if (form?.dataset.cosign === 'activate') submitting(form, activate);
else if (form?.dataset.cosign === 'change') submitting(form, changePin);
else if (form?.dataset.cosign === 'sign') setUpSign(form);
document.querySelectorAll('[data-check-share]').forEach(checkShare);
