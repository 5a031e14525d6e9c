#!/usr/bin/env bash
# Renders a report (adaqp report DIR) in headless Chromium, as a reader's browser would, and checks
# that every figure on the page was decoded and shown. Installs Debian's chromium when missing.
# usage: scripts/check_report.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
page=$(cd "$dir/report" && pwd)/index.html
[ -f "$page" ] || { echo "check_report: $page not found (run adaqp report $dir)" >&2; exit 1; }
if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
dom=$(chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 --dump-dom "file://$page" 2>/dev/null)
total=$(grep -o 'data-figures="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || true)
loaded=$(grep -o 'data-figures-loaded="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || true)
expected=$(grep -o '<img ' "$page" | wc -l)
if [ -z "$total" ] || [ "$total" != "$expected" ] || [ "$loaded" != "$expected" ] || [ "$expected" -eq 0 ]; then
  echo "check_report: $page: ${loaded:-?} of ${total:-?} figures shown (page has $expected)" >&2
  exit 1
fi
echo "check_report: $page: all $expected figures shown in headless Chromium"
