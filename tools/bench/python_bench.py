"""The Python figure's measurements, run by sockrpc_bench (python.c): bulk send and
receive through sockrpc.socket against Python's own socket on the same loopback server,
and a small call (getsockopt, one round trip to the daemon) against a raw 64-byte
ping-pong over a Unix socketpair, in Python too. Variants alternate within each round,
the order rotating; prints one line per figure: NAME BROKER BASELINE (medians)."""

import argparse
import os
import socket
import statistics
import struct
import time

import sockrpc

CHUNK = 64 * 1024
PING = 64


def bulk(make, port, send_dir, nbytes):
    """MiB/s moving nbytes to the sink or from the source, connect and command included."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    t0 = time.perf_counter()
    with make() as s:
        s.connect(("127.0.0.1", port))
        s.sendall(struct.pack(">cQ", b"S" if send_dir else b"R", nbytes))
        left = nbytes
        if send_dir:
            while left > 0:
                n = min(left, CHUNK)
                s.sendall(view[:n])
                left -= n
            if s.recv(1) == b"":
                raise OSError("the sink hung up")
        else:
            while left > 0:
                n = s.recv_into(view, min(left, CHUNK))
                if n == 0:
                    raise OSError("the source hung up")
                left -= n
    return nbytes / (1 << 20) / (time.perf_counter() - t0)


def small_broker(s, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return (time.perf_counter() - t0) / calls * 1e6


def small_raw(fd, calls):
    msg = b"x" * PING
    t0 = time.perf_counter()
    for _ in range(calls):
        os.write(fd, msg)
        got = 0
        while got < PING:
            got += len(os.read(fd, PING - got))
    return (time.perf_counter() - t0) / calls * 1e6


def pingpong_echo():
    """Our end of a socketpair whose other end a forked process echoes."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        fd = b.fileno()
        while data := os.read(fd, PING):
            os.write(fd, data)
        os._exit(0)
    b.close()
    return a, pid


def rotate(variants, r):
    k = r % len(variants)
    return variants[k:] + variants[:k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--calls", type=int, required=True)
    ap.add_argument("--only", default="send,recv,small")
    a = ap.parse_args()
    sockrpc.set_socket_path(a.socket)
    only = a.only.split(",")
    for name, send_dir in (("send", True), ("recv", False)):
        if name not in only:
            continue
        got = {"broker": [], "direct": []}
        variants = [("broker", sockrpc.socket), ("direct", socket.socket)]
        for r in range(a.rounds):
            for key, make in rotate(variants, r):
                got[key].append(bulk(make, a.port, send_dir, a.bytes))
        print(name, statistics.median(got["broker"]), statistics.median(got["direct"]),
              flush=True)
    if "small" in only:
        s = sockrpc.socket()
        raw, pid = pingpong_echo()
        got = {"broker": [], "raw": []}
        variants = [("broker", lambda: small_broker(s, a.calls)),
                    ("raw", lambda: small_raw(raw.fileno(), a.calls))]
        for r in range(a.rounds):
            for key, run in rotate(variants, r):
                got[key].append(run())
        raw.close()
        os.waitpid(pid, 0)
        s.close()
        print("small", statistics.median(got["broker"]), statistics.median(got["raw"]),
              flush=True)


if __name__ == "__main__":
    main()
