#!/usr/bin/env bash
# test_tls_abuse_workers.sh BUILD_DIR - test_tls_abuse.sh against a daemon with two workers
# (--workers 2): every worker wakes for each TLS connection, so a slowloris or a flood
# meets both; the good client is still served and both workers' descriptors come back.
exec env SOCKRPCD_WORKERS=2 bash "$(dirname "$0")/test_tls_abuse.sh" "$@"
