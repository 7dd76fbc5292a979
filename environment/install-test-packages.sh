#!/usr/bin/env bash
# Best effort: the Debian packages some tests drive as real programs. Without them, those tests skip
# with a message; nothing else needs them.
#   chromium, chromium-driver  the dashboard's browser test
#   rsyslog                    the syslog test that relays real samples through a real rsyslogd
#                              (tests/collector/test_syslog_payload.py; it runs `rsyslogd -n -f CONF`,
#                              unprivileged ports, no system daemon is started or configured)
#   logrotate                  the file-source tests that rotate a followed file with the real logrotate
#                              (tests/sources/test_logrotate.py; `logrotate -f -s STATE CONF` on files of
#                              the test's own folder; no cron job or system configuration is touched)
#   prometheus                 the metrics test that scrapes a running stack with a real Prometheus server
#   prometheus-alertmanager    the Alertmanager receiver test and the routing-tree comparison with amtool
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing+=(logrotate)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the tests that drive them…"
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}") >/dev/null 2>&1; then
    exit 0
  fi
fi
echo "not installed and could not be: ${missing[*]} (the tests that need them will skip)"
