#!/usr/bin/env python3
"""make_client_corpus.py OUTDIR - seed inputs for fuzz_client_reply (see its header for
the input format): a few well-behaved conversations, from which the fuzzer mutates."""
import os
import struct
import sys


def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64 go out as ten bytes
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def num(field, v):
    return varint(field << 3) + varint(v)


def blob(field, b):
    return varint(field << 3 | 2) + varint(len(b)) + b


OK = blob(1, b"")  # Status with code OK


def state(id=1, blocking=False, connected=True, closed=False, listening=False):
    s = num(1, id) + blob(2, b"127.0.0.1") + num(3, 9 if connected else 0)
    s += num(4, 2) + num(5, 1) + num(6, 6)  # INET, STREAM, TCP
    if connected:
        s += num(7, 1) + num(9, 1)
    if listening:
        s += num(8, 1) + num(10, 1)
    if closed:
        s += num(11, 1)
    if blocking:
        s += num(13, 1)
    return s + num(14, -1) + num(15, -1) + num(16, -1)


def reply(body, ctl=0, param=0):
    return bytes([ctl, param]) + struct.pack(">H", len(body)) + body


def seed(ops, records, mode=0, max_frame=0, max_payload=0):
    head = bytes([mode]) + struct.pack(">II", max_frame, max_payload) + bytes([len(ops)])
    return head + b"".join(bytes(op) for op in ops) + b"".join(records)


def main(out):
    os.makedirs(out, exist_ok=True)
    st, closed = state(), state(closed=True)
    seeds = {
        # socket, send 12, receive 10, read 6, info, get_option, close, get_address_info
        "stream": seed(
            [(0, 0), (3, 12), (4, 12), (6, 8), (9, 0), (10, 0), (17, 0), (18, 0)],
            [reply(OK + blob(2, st)), reply(OK + blob(2, st) + num(3, 12)),
             reply(OK + blob(2, st) + blob(3, b"x" * 10)),
             reply(OK + blob(2, st) + blob(3, b"y" * 6)),
             reply(OK + blob(2, st) + blob(3, b"127.0.0.1") + num(5, 4242) + num(6, 2)),
             reply(OK + blob(2, st) + num(3, 212992)), reply(OK + blob(2, closed)),
             reply(OK + blob(2, b"localhost") +
                   blob(3, num(1, 2) + blob(2, b"127.0.0.1")))]),
        # blocking and connected: the send goes behind, a full receive starts read-ahead
        "behind_ahead": seed(
            [(0, 0), (3, 12), (4, 12), (4, 12), (17, 0)],
            [reply(OK + blob(2, state(blocking=True))),
             reply(OK + blob(2, state(blocking=True)) + num(3, 12)),
             reply(OK + blob(2, state(blocking=True)) + blob(3, b"a" * 10)),
             reply(OK + blob(2, state(blocking=True)) + blob(3, b"b" * 100)),
             reply(OK + blob(2, state(blocking=True)) + blob(3, b"c" * 100)),
             reply(OK + blob(2, closed))], max_payload=4096),
        # bind, listen, accept (handle 2), then the state
        "accept": seed(
            [(0, 0), (14, 0), (15, 4), (13, 0), (19, 0)],
            [reply(OK + blob(2, state(connected=False))),
             reply(OK + blob(2, state(connected=False))),
             reply(OK + blob(2, state(connected=False, listening=True))),
             reply(OK + blob(2, state(connected=False, listening=True)) +
                   blob(3, state(id=2))),
             reply(OK + blob(2, closed)), reply(OK + blob(2, closed))]),
        # the Hello reply from the input, then a socket and a hang-up in a reply's middle
        "hello_then_cut": seed(
            [(0, 0), (4, 12)],
            [reply(num(2, 1) + num(3, 1) + blob(4, b"fuzz") + num(5, 7) + num(6, 65536) +
                   num(8, 1024)),
             reply(OK + blob(2, st)),
             bytes([0x08, 0]) + struct.pack(">I", 5000) + struct.pack(">H", 20) +
             OK + blob(2, st)[:18]], mode=1),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
