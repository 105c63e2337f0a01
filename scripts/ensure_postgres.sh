#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use answers on 127.0.0.1:5432 (trust auth, user postgres).
# On this kind of machine the server is installed from Debian's packages; start it if it is down.
set -euo pipefail
answers() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null; }
if answers; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
for _ in $(seq 1 30); do answers && exit 0; sleep 1; done
echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2
exit 1
