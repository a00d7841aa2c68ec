#!/usr/bin/env bash
# System packages the portal needs. As root: install what is missing (Debian/Ubuntu).
# Otherwise: name what is missing and how to get it; fail only when the build cannot go on.
#   usage: scripts/system-deps.sh run|test
set -uo pipefail
purpose=${1:-run}
need=() optional=()

command -v npm >/dev/null || need+=(nodejs npm)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
command -v qpdf >/dev/null || need+=(qpdf)  # repairs damaged uploads before signing
command -v soffice >/dev/null || optional+=(libreoffice-writer-nogui)
if [ "$purpose" = test ]; then
  command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || need+=(chromium)
fi
py=${PYTHON:-python3}
"$py" -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)

if [ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages: ${need[*]} ${optional[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || { echo "apt-get install failed" >&2; exit 1; }
  if [ ${#optional[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
      || echo "note: LibreOffice could not be installed; Word files will not convert (PDF works)." >&2
  fi
  exit 0
fi

status=0
for pkg in "${need[@]}"; do
  case $pkg in
    nodejs|npm) echo "missing: Node.js and npm (front-end packages). Install: sudo apt-get install nodejs npm" >&2; status=1 ;;
    python3-venv) echo "missing: Python venv support. Install: sudo apt-get install python3-venv" >&2; status=1 ;;
    fonts-noto-cjk) echo "missing: a CJK font (seal images need one). Install: sudo apt-get install fonts-noto-cjk" >&2 ;;
    chromium) echo "missing: Chromium (browser tests skip without it). Install: sudo apt-get install chromium" >&2 ;;
    qpdf) echo "missing: qpdf (repairs damaged PDFs at upload). Install: sudo apt-get install qpdf" >&2; status=1 ;;
  esac
done
for pkg in "${optional[@]}"; do
  echo "optional: LibreOffice is not installed, so Word files cannot be converted (the upload page says so)." \
       "Install: sudo apt-get install libreoffice-writer-nogui" >&2
done
exit $status
