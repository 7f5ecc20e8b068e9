#!/usr/bin/env python3
"""Writes small seed corpora for the libFuzzer targets into tests/fuzz/corpus/<target>/.

Seeds follow each target's input layout (see the target's header comment). Run from anywhere:
    python3 tests/fuzz/make_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def attr(t, v):
    return struct.pack(">BH", t, len(v)) + v


def env(t, payload):
    return struct.pack(">BH", t, len(payload) + 3) + payload


def ipv4(src=b"\xc6\x12\x00\x02", dst=b"\x01\x01\x01\x01", body=b"hello"):
    total = 20 + len(body)
    return struct.pack(">BBHHHBBH", 0x45, 0xB8, total, 1, 0, 64, 17, 0) + src + dst + body


def ipv6(src=b"\xfd" + b"\x00" * 14 + b"\x02", dst=b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01",
         body=b"hi"):
    return struct.pack(">IHBB", 0x6B800000, len(body), 58, 64) + src + dst + body


CONFIG_REQUEST = attr(0x01, b"\x01") + attr(0x02, b"\x00\x00\x00\x07") + attr(0x04, b"tok")
CONFIG_ASSIGN = (attr(0x10, b"\xc6\x12\x00\x02\x18") + attr(0x11, b"\xfd" + b"\x00" * 14 + b"\x02\x40")
                 + attr(0x12, b"\x0a\x00\x00\x00\x08") + attr(0x13, b"\x08\x08\x08\x08")
                 + attr(0x14, b"\x05\x78") + attr(0x15, b"\x00\x14"))
KEEPALIVE = attr(0x20, struct.pack(">Q", 123456789))
CLOSE = attr(0x30, b"\x00\x04") + attr(0x31, b"protocol error")

STREAM = (env(0x80, CONFIG_REQUEST) + env(0x01, ipv4()) + env(0x82, KEEPALIVE)
          + env(0x01, ipv6()) + env(0x42, b"unknown") + env(0x84, CLOSE))

SEEDS = {
    "envelope_decoder_fuzz": {
        # max byte | chunk count | chunk sizes | stream
        "stream": bytes([0x20, 4, 1, 3, 7, 16]) + STREAM,
        "one_byte": bytes([0xFF, 1, 1]) + env(0x01, ipv4()) + env(0x01, ipv6()),
        "bad_length": bytes([0x01, 0]) + b"\x80\x00\x02",
        "too_large": bytes([0x00, 2, 2, 5]) + b"\x01\x01\x00" + ipv4(),
    },
    "control_message_fuzz": {
        "config_request": CONFIG_REQUEST,
        "config_assign": CONFIG_ASSIGN + attr(0x77, b"future"),
        "config_assign_dns_search": CONFIG_ASSIGN + attr(0x16, b"lab.example") + attr(0x16, b"corp."),
        "keepalive": KEEPALIVE,
        "close": CLOSE,
    },
    "server_session_fuzz": {
        # max byte | flags | (ctl byte: len in low 6 bits, time step in high 2 | bytes)*
        "session": bytes([0x10, 0]) + b"".join(
            bytes([min(len(STREAM) - i, 63) | (0x40 if i else 0)]) + STREAM[i:i + 63]
            for i in range(0, len(STREAM), 63)),
        "refused": bytes([0x10, 1, len(env(0x80, CONFIG_REQUEST))]) + env(0x80, CONFIG_REQUEST),
        "idle_then_timeout": bytes([0x10, 0, 0xC0, 0xC0, 0xC0, 0xC0]),
    },
    "ip_packet_fuzz": {
        "ipv4": ipv4(),
        "ipv6": ipv6(),
        "ipv4_options": struct.pack(">BBHHHBBH", 0x46, 0, 28, 1, 0, 64, 6, 0) + b"\x00" * 8
        + b"\x01\x01\x01\x00" + b"\x00" * 4,
    },
}

for target, seeds in SEEDS.items():
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds")
