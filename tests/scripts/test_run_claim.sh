#!/usr/bin/env bash
# sockrpc run tells the daemon which program it runs (Hello's claimed_exe). The claim is
# the client's word: policy rules on it (claimed-exe=) are refused in allow rules, a deny
# rule on it applies, a claim never widens access (a client claiming any program gets no
# more than its uid's rules), the audit lines carry it, --explain shows it, and a bad
# claim gets a clear error while the daemon keeps serving.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
build=$1
scratch_dir
fail() {
	echo "FAIL: $*"
	echo "--- audit"; tail -n 20 "$dir/audit.log" 2>/dev/null || true
	echo "--- daemon"; tail -n 20 "$dir/daemon.log" 2>/dev/null || true
	exit 1
}
sockrpcd=$build/daemon/sockrpcd
sockrpc=$build/client/cli/sockrpc

# The parser: an allow rule on a claim would grant access on the client's word.
printf 'allow uid=65534 claimed-exe=/usr/bin/curl connect tcp 127.0.0.1 port 80\n' \
	>"$dir/widen.policy"
set +e
out=$("$sockrpcd" --check-policy "$dir/widen.policy" 2>&1)
rc=$?
set -e
[ "$rc" != 0 ] || fail "an allow rule on claimed-exe was accepted"
grep -q "widen.policy:1: claimed-exe= only in deny rules" <<<"$out" || fail "parser: $out"
printf 'deny uid=65534 claimed-exe=relative connect *\n' >"$dir/rel.policy"
out=$("$sockrpcd" --check-policy "$dir/rel.policy" 2>&1) && fail "a relative claim glob: $out"
grep -q "rel.policy:1: claimed-exe= needs absolute paths" <<<"$out" || fail "parser: $out"

if [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
	echo "needs root and network namespaces for the rest"
	exit 77
fi
if ! setpriv --reuid 65534 --regid 65534 --clear-groups unshare -U true 2>/dev/null; then
	echo "no unprivileged user namespaces here"
	exit 77
fi

python3 - "$dir" <<'PY' &
import os, socket, sys, threading
d = sys.argv[1]
def serve(s, name):
    n = 0
    while True:
        c, _ = s.accept(); n += 1
        open(f"{d}/{name}.count", "w").write(str(n))
        with c:
            data = c.recv(100)
            if data: c.sendall(data)
socks = []
for name in ("a", "b"):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); socks.append(s)
    threading.Thread(target=serve, args=(s, name), daemon=True).start()
open(f"{d}/ports.tmp", "w").write(" ".join(str(s.getsockname()[1]) for s in socks) + "\n")
os.rename(f"{d}/ports.tmp", f"{d}/ports")
threading.Event().wait()
PY
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/ports" ] && break; sleep 0.05; done
read -r a b <"$dir/ports"

# uid 65534 may reach "a" only; under run, the probe (claimed by its path) may not even
# that; any other program may; "b" only the real curl (exe=, from the kernel), which a
# claim of /usr/bin/curl is not.
probe_exe=$(realpath "$build/tests/scripts/run_probe")
cat >"$dir/policy" <<POLICY
deny uid=65534 claimed-exe=$probe_exe connect tcp 127.0.0.1 port $a reason "not the probe"
deny uid=65534 claimed-exe!=/usr/bin/* connect tcp 127.0.0.1 port $b reason "claims outside /usr/bin"
allow uid=65534 create tcp
allow uid=65534 connect tcp 127.0.0.1 port $a handback
allow uid=65534 exe=/usr/bin/curl connect tcp 127.0.0.1 port $b handback
POLICY
"$sockrpcd" --check-policy "$dir/policy" >/dev/null 2>&1 || fail "policy: $("$sockrpcd" --check-policy "$dir/policy" 2>&1)"
"$sockrpcd" --socket "$dir/s.sock" --policy "$dir/policy" --audit "$dir/audit.log" \
	2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
chmod 755 "$dir"
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups -- "$@"; }
# (LeakSanitizer, in an ASan build, stops the world with ptrace, which the filter refuses.)
run() {
	as_nobody env ASAN_OPTIONS=detect_leaks=0 timeout 60 "$sockrpc" --socket "$dir/s.sock" \
		run "$@"
}
audited() { audit_has "$dir/audit.log" "$1" || fail "no audit line matching $1"; }

# The deny rule on the claim applies: the probe is refused "a", which its uid may reach.
out=$(run -- "$probe_exe" connect 127.0.0.1 "$a") && fail "the claimed probe reached a: $out"
[ "$out" = "connect: EACCES" ] || fail "claimed probe: $out"
audited "\"uid\":65534.*\"claimed_exe\":\"$probe_exe\".*\"port\":$a.*\"decision\":\"deny\".*not the probe"
[ ! -e "$dir/a.count" ] || fail "a was reached"

# Another program (Debian's python3, claimed as itself) gets its uid's access: "a" yes...
py_exe=$(realpath /usr/bin/python3)
prog='import socket, sys
try:
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    c.sendall(b"hi"); print("ok", c.recv(10))
except OSError as e:
    print("error", e.errno)'
out=$(run -- "$py_exe" -c "$prog" "$a") || fail "python3 to a: $out"
[ "$out" = "ok b'hi'" ] || fail "python3 to a: $out"
audited "\"claimed_exe\":\"$py_exe\".*\"port\":$a.*\"decision\":\"allow\""
# ... "b" no: no rule allows it, whatever the claim (python3 lives in /usr/bin, so the
# negated deny rule does not match it; the default denies).
out=$(run -- "$py_exe" -c "$prog" "$b") || true
[ "$out" = "error 13" ] || fail "python3 to b: $out"
audited "\"claimed_exe\":\"$py_exe\".*\"port\":$b.*\"decision\":\"deny\""

# A claim never widens: a client claiming anything at all (here through the library, as
# any program of that uid could) gets no more than the uid's rules.
cat >"$dir/claim.py" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
class Err(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("sys_errno", ctypes.c_int), ("message", ctypes.c_char * 256)]
lib.sr_client_open_claiming.restype = ctypes.c_void_p
lib.sr_connect_fd.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                              ctypes.c_int, ctypes.c_int, ctypes.POINTER(Err)]
e = Err()
c = lib.sr_client_open_claiming(sys.argv[2].encode(), sys.argv[3].encode(), ctypes.byref(e))
if not c:
    print("open:", e.message.decode()); sys.exit(0)
for port in sys.argv[4:]:
    fd = lib.sr_connect_fd(c, 2, 1, b"127.0.0.1", int(port), 5000, ctypes.byref(e))
    print(port, "connected" if fd >= 0 else "refused")
PY
lib=$build/client/libsockrpc.so
# An ASan build's library needs its runtime loaded first into python3.
if grep -q "SOCKRPC_SANITIZE:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null; then
	export LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
	export ASAN_OPTIONS=detect_leaks=0
fi
for claim in /usr/bin/curl /usr/sbin/sshd /bin/sh "$py_exe"; do
	out=$(as_nobody "$py_exe" "$dir/claim.py" "$lib" "$dir/s.sock" "$claim" "$a" "$b")
	[ "$out" = "$a connected"$'\n'"$b refused" ] ||
		fail "claiming $claim: $out"
done
[ ! -e "$dir/b.count" ] || fail "b was reached on a claim"

# A claim that is not an absolute path, or has control bytes, is refused at Hello with a
# clear error; the daemon goes on serving.
out=$(as_nobody "$py_exe" "$dir/claim.py" "$lib" "$dir/s.sock" "relative/prog" "$a")
grep -q "open: claimed_exe must be an absolute path" <<<"$out" || fail "relative claim: $out"
out=$(as_nobody "$py_exe" "$dir/claim.py" "$lib" "$dir/s.sock" $'/bin/x\nforged' "$a")
grep -q "open: claimed_exe must be an absolute path" <<<"$out" || fail "control bytes: $out"
out=$(as_nobody "$py_exe" "$dir/claim.py" "$lib" "$dir/s.sock" "/usr/bin/curl" "$a")
[ "$out" = "$a connected" ] || fail "the daemon stopped serving: $out"

# --explain takes a claim and shows it, and which rule it met.
out=$("$sockrpcd" --explain --policy "$dir/policy" uid=65534 "claimed-exe=$probe_exe" \
	connect tcp 127.0.0.1 port "$a" 2>&1) && fail "explain allowed the probe: $out"
grep -q "claimed-exe=$probe_exe" <<<"$out" && grep -q "policy:1" <<<"$out" ||
	fail "explain: $out"
out=$("$sockrpcd" --explain --policy "$dir/policy" uid=65534 claimed-exe=/usr/bin/curl \
	connect tcp 127.0.0.1 port "$a" 2>&1) || fail "explain with another claim: $out"
grep -q "policy:4" <<<"$out" || fail "explain: $out"
echo "run_claim: ok"
