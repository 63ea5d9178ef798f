"""What the sandboxed tests share: the servers' ports, the test CA, the daemon's log."""

import json
import os
import time

DIR = os.environ.get("SOCKRPC_TEST_DIR", "")
PORTS = json.load(open(os.path.join(DIR, "ports.json"))) if DIR else {}
CA = os.path.join(DIR, "ca.pem")
DAEMON_LOG = os.path.join(DIR, "daemon.log")


def audit_lines(predicate, wait=2.0):
    """The daemon's audit lines (JSON) for which predicate holds, waiting a little for
    the daemon to write them."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        with open(DAEMON_LOG) as f:
            for line in f:
                if line.startswith("{"):
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if predicate(entry):
                        found.append(entry)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
