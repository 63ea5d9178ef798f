#!/usr/bin/env bash
# test_tls_workers.sh BUILD_DIR - test_tls_reload.sh against a daemon with two workers
# (--workers 2): TLS sessions on either, the key in no worker, reloads reaching both.
exec env SOCKRPCD_WORKERS=2 bash "$(dirname "$0")/test_tls_reload.sh" "$@"
