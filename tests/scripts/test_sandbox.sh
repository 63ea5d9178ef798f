#!/usr/bin/env bash
# The sandbox case: a process in a fresh network namespace (no network at all) reaches a
# TCP echo server in the host's namespace only through the daemon's Unix socket.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
build=$1
scratch_dir

# An echo server on the host's loopback, on a port the kernel picks.
python3 - "$dir/port" <<'PY' &
import socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
open(sys.argv[1], "w").write(str(srv.getsockname()[1]))
srv.settimeout(30)
def echo(conn):
    with conn:
        while (data := conn.recv(65536)):
            conn.sendall(data)
while True:
    try:
        conn, _ = srv.accept()
    except OSError:
        break
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
PY
pids+=($!)
"$build/daemon/sockrpcd" --socket "$dir/sockrpc.sock" 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 100); do
	[ -S "$dir/sockrpc.sock" ] && [ -s "$dir/port" ] && break
	sleep 0.05
done
port=$(cat "$dir/port")

if ! unshare -n true 2>/dev/null; then
	echo "cannot create a network namespace here"
	exit 77
fi
# Inside: no interface is up, not even loopback; only the daemon's socket file is shared.
unshare -n -- sh -c 'ip -brief link 2>/dev/null || true; exec "$0" "$@"' \
	"$build/tests/sandbox_probe" "$dir/sockrpc.sock" 127.0.0.1 "$port"
audit_has "$dir/daemon.log" '"op":"connect".*"decision":"allow"' || {
	echo "the daemon did not audit the brokered connect"
	exit 1
}
echo "sandbox: ok"
