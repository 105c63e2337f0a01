#!/usr/bin/env bash
# Make sure the Redis server the Celery e2e test uses as its broker answers on 127.0.0.1:6379.
# On this kind of machine it comes from Debian's packages (redis-server); start it if it is down
# (no persistence: a test broker), install it first if it is missing.
set -euo pipefail
answers() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if command -v redis-cli >/dev/null 2>&1 && answers; then exit 0; fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
echo "starting Redis on 127.0.0.1:6379"
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
for _ in $(seq 1 30); do answers && exit 0; sleep 1; done
echo "Redis does not answer on 127.0.0.1:6379" >&2
exit 1
