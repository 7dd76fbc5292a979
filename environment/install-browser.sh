#!/usr/bin/env bash
# Best effort: Debian's Chromium for the dashboard's browser test. Without it, that test skips
# with a message; nothing else needs it.
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the dashboard browser test…"
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
      >/dev/null 2>&1; then
    exit 0
  fi
fi
echo "chromium is not installed and could not be: the dashboard browser test will skip"
