#!/usr/bin/env bash
# Kept for callers of the old name: environment/install-test-packages.sh installs chromium and the other
# Debian packages the tests drive (rsyslog).
exec bash "$(dirname "$0")/install-test-packages.sh"
