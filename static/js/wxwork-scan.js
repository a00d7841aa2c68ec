/**
 * 扫一扫 inside WeChat Work (templates/cosign/m_scan.html): the client's own QR scanner through the
 * official JS-SDK, @wecom/jssdk (static/vendor/wecom-jssdk.js, loaded before this file as the global
 * `ww`). The SDK calls wx.config itself, with beta mode and the corp's identity, and asks
 * getConfigSignature() for the signature of the page's address; that comes from the portal
 * (GET /m/api/wxwork/jsapi-config?url=…, portal/cosign/views.py), which alone holds the ticket.
 *
 * A scanned text is followed only when it is one of the two links this portal's QR codes carry,
 * on this very origin: <base>sign/<token> (a sign request) and <base>activate?code=… (a
 * certificate activation), <base> being the phone pages' root (/m/). Anything else is refused: a
 * QR code stuck over the PC's could otherwise send the person, logged in, anywhere.
 */

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/; // secrets.token_urlsafe
const CODE = /^[A-Za-z0-9-]{1,32}$/; // an activation code, with or without its dash

/** The path (with query) to open for a scanned text, or null if it is no link of this portal. */
export function portalLink(text, origin, base) {
  let url;
  try {
    url = new URL(String(text).trim()); // absolute only: the portal's QR codes carry full links
  } catch {
    return null;
  }
  if (url.origin !== origin || !url.pathname.startsWith(base)) return null;
  const rest = url.pathname.slice(base.length);
  if (rest.startsWith('sign/') && TOKEN.test(rest.slice(5)) && !url.search) return url.pathname;
  const keys = [...url.searchParams.keys()];
  const code = url.searchParams.get('code');
  if (rest === 'activate' && keys.length === 1 && keys[0] === 'code' && CODE.test(code)) {
    return `${url.pathname}?code=${encodeURIComponent(code)}`;
  }
  return null;
}

class SignatureError extends Error {}

/** What wx.config needs beside the corp id, from the portal; its refusal message if it says no. */
async function configSignature(configUrl, pageUrl) {
  let response;
  try {
    response = await fetch(`${configUrl}?url=${encodeURIComponent(pageUrl)}`, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
  } catch {
    throw new SignatureError('网络连接失败，请检查网络后重试');
  }
  const data = await response.json().catch(() => null);
  if (!response.ok || !data) throw new SignatureError(data?.error || '系统繁忙，请稍后重试');
  return { timestamp: data.timestamp, nonceStr: data.nonceStr, signature: data.signature };
}

const FALLBACK = '请点击企业微信右上角【+】→【扫一扫】扫描电脑上的二维码';

function setUp(root, ww) {
  const error = root.querySelector('[data-error]');
  const progress = root.querySelector('[data-progress]');
  const button = root.querySelector('[data-scan]');

  const fail = (message) => {
    progress.hidden = true;
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
  };
  if (!ww) {
    // The SDK did not load (network): the client's own 扫一扫 still works.
    button.hidden = true;
    return fail(`无法打开扫一扫，${FALLBACK}`);
  }

  ww.register({
    corpId: root.dataset.corpId,
    jsApiList: ['scanQRCode'],
    getConfigSignature: (url) => configSignature(root.dataset.configUrl, url),
  });

  async function scan() {
    error.hidden = true;
    progress.textContent = '正在打开扫一扫…';
    progress.hidden = false;
    button.disabled = true;
    let result;
    try {
      result = await ww.scanQRCode({ needResult: true, scanType: ['qrCode'] });
    } catch (problem) {
      if (problem instanceof SignatureError) return fail(problem.message);
      if (/:cancel$/.test(problem?.errMsg ?? '')) {
        // The person closed the scanner: nothing went wrong.
        progress.hidden = true;
        button.disabled = false;
        return;
      }
      return fail(`无法打开扫一扫，${FALLBACK}`);
    }
    const target = portalLink(result?.resultStr ?? '', location.origin, root.dataset.phoneRoot);
    if (!target) return fail('无法识别的二维码，请扫描电脑上电子签一体化平台显示的二维码');
    progress.textContent = '正在打开…';
    location.assign(target);
  }

  button.addEventListener('click', scan);
  scan(); // the tab is 扫一扫: open the scanner right away; the button scans again
}

const root = globalThis.document?.querySelector('[data-wxwork-scan]');
if (root) setUp(root, globalThis.ww);
