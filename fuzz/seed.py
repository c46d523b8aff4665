#!/usr/bin/env python3
"""Seeds for the fuzz targets, cut out of Ethernet pcap captures.

    python3 fuzz/seed.py OUT_DIR CAPTURE.pcap [CAPTURE.pcap ...]

writes OUT_DIR/TARGET/NAME for every target of fuzz/run.sh: frames for
`ethernet` and (as scripts of frames) `interface`; ARP and IPv4 packets;
ICMP messages, UDP datagrams and TCP segments; DNS messages, and DNS
replies as resolver scripts; HTTP heads, and the client's bytes of each
TCP connection for `http_server`; URLs from the requests. Each input is
written in the format its target reads (see the targets' documentation).
`http_chunked` and `tcp_connection` take a few hand-made seeds as well,
since captures rarely hold a whole chunked body and the connection target
reads a script, not packets.

Frames cut short by the capture's snap length are padded with zeros to
their original length, so that their length fields agree; their
checksums then fail, which the targets parse past or, for `interface`,
recompute. Only the standard library is used. Minimise the result with
`fuzz/run.sh minimize` before committing any of it.
"""

import hashlib
import os
import struct
import sys

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
IP_ICMP, IP_TCP, IP_UDP = 1, 6, 17
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")


def read_pcap(path):
    """Yields the frames of a classic pcap file with Ethernet link type."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, not Ethernet")
    pos = 24
    while pos + 16 <= len(data):
        _, _, incl, orig = struct.unpack(endian + "IIII", data[pos : pos + 16])
        pos += 16
        frame = data[pos : pos + incl]
        pos += incl
        # Undo the snap length: pad to the length the frame had.
        yield frame + bytes(max(0, orig - incl))


def ipv4_of(frame):
    """The IPv4 datagram in a frame (trimmed to its total length), or None."""
    if len(frame) < 34 or struct.unpack("!H", frame[12:14])[0] != ETH_IPV4:
        return None
    ip = frame[14:]
    total = struct.unpack("!H", ip[2:4])[0]
    if ip[0] >> 4 != 4 or total > len(ip) or total < (ip[0] & 15) * 4:
        return None
    return ip[:total]


def transport_of(ip):
    """(protocol, payload) of an unfragmented datagram, or None."""
    flags_offset = struct.unpack("!H", ip[6:8])[0]
    if flags_offset & 0x3FFF:
        return None
    return ip[9], ip[(ip[0] & 15) * 4 :]


def tcp_parts(segment):
    """(src port, dst port, seq, flags, payload) of a TCP segment, or None."""
    if len(segment) < 20:
        return None
    sport, dport, seq = struct.unpack("!HHI", segment[:8])
    offset = (segment[12] >> 4) * 4
    if offset < 20 or offset > len(segment):
        return None
    return sport, dport, seq, segment[13], segment[offset:]


def dns_question_end(msg):
    """Offset just past the first question of a DNS message, or None."""
    pos = 12
    while pos < len(msg):
        n = msg[pos]
        if n == 0:
            return pos + 5 if pos + 5 <= len(msg) else None
        if n & 0xC0 == 0xC0:
            return pos + 6 if pos + 6 <= len(msg) else None
        pos += 1 + n
    return None


def dns_name_text(msg):
    """The first question's name as text, or None (no compression there)."""
    labels, pos = [], 12
    while pos < len(msg):
        n = msg[pos]
        if n == 0:
            return ".".join(labels) or "."
        if n & 0xC0:
            return None
        labels.append(msg[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return None


def record(data):
    """A record with the two-byte big-endian length prefix of fuzz/src/lib.rs."""
    data = data[:65535]
    return struct.pack("!H", len(data)) + data


class Seeds:
    """Collects seeds per target, without duplicates."""

    def __init__(self, out):
        self.out = out
        self.count = {}

    def add(self, target, data):
        directory = os.path.join(self.out, target)
        os.makedirs(directory, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.count[target] = self.count.get(target, 0) + 1


def cut_capture(seeds, frames):
    """Per-layer seeds from one capture's frames.

    A bulk transfer repeats itself: past its first 300 and before its last
    100 frames, a capture gives packet seeds from a sample of about 400
    frames only. DNS and HTTP are looked for in every frame.
    """
    streams = {}  # (client, server) -> {seq: payload}, client to port 80
    stride = max(1, len(frames) // 400)
    script = b"\x01"  # interface: recompute checksums...
    for i, frame in enumerate(frames):
        sampled = i < 300 or i >= len(frames) - 100 or i % stride == 0
        if sampled:
            seeds.add("ethernet", frame)
            # ...and let the application read and answer (0x01|0x08|0x10).
            script += bytes([0x19, 0x01]) + record(frame)
            if len(script) > 2 and (i % 32 == 31 or len(script) > 16384):
                seeds.add("interface", script)
                script = b"\x01"
        ethertype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else None
        if ethertype == ETH_ARP:
            seeds.add("arp", frame[14:])
        ip = ipv4_of(frame)
        if ip is None:
            continue
        if sampled:
            seeds.add("ipv4", ip)
        parts = transport_of(ip)
        if parts is None:
            continue
        protocol, payload = parts
        if protocol == IP_ICMP:
            seeds.add("icmpv4", payload)
        elif protocol == IP_UDP:
            seeds.add("udp", payload)
            if len(payload) > 8 and 53 in struct.unpack("!HH", payload[:4]):
                cut_dns(seeds, payload[8:])
        elif protocol == IP_TCP:
            if sampled:
                seeds.add("tcp", payload)
            cut_tcp(seeds, ip, payload, streams)
    if len(script) > 1:
        seeds.add("interface", script)
    for key, pieces in streams.items():
        client_bytes = b"".join(pieces[s] for s in sorted(pieces))
        if client_bytes:
            # http_server: a seed byte for the read sizes, then the bytes.
            seeds.add("http_server", b"\x07" + client_bytes)


def cut_tcp(seeds, ip, segment, streams):
    parts = tcp_parts(segment)
    if parts is None:
        return
    sport, dport, seq, _, payload = parts
    if not payload:
        return
    if 53 in (sport, dport) and len(payload) > 2:
        cut_dns(seeds, payload[2:])
    if payload.startswith(HTTP_METHODS) or payload.startswith(b"HTTP/"):
        head_end = payload.find(b"\r\n\r\n")
        head = payload if head_end < 0 else payload[: head_end + 4]
        seeds.add("http_head", head)
        if payload.startswith(HTTP_METHODS):
            cut_url(seeds, head)
    if dport == 80:
        key = (ip[12:16], sport, ip[16:20], dport)
        streams.setdefault(key, {})[seq] = payload


def cut_dns(seeds, msg):
    if len(msg) < 12:
        return
    seeds.add("dns_message", msg)
    if not msg[2] & 0x80:
        return
    # dns_resolver: config (3 attempts, chain 7, cache 16), the question's
    # type, its name, then the reply as an event whose ID and question are
    # patched in (tag 0x30), its own question cut out.
    end = dns_question_end(msg)
    name = dns_name_text(msg)
    if end is None or name is None:
        return
    qtype = struct.unpack("!H", msg[end - 4 : end - 2])[0]
    types = {1: 0, 28: 1, 5: 2, 15: 3, 16: 4, 6: 5, 33: 6, 2: 7}
    if qtype not in types:
        return
    reply = msg[:12] + msg[end:]
    name_bytes = name.encode()[:255]
    script = bytes([0x5E, types[qtype], len(name_bytes)]) + name_bytes
    script += bytes([0x30]) + record(reply)
    seeds.add("dns_resolver", script)


def cut_url(seeds, head):
    lines = head.split(b"\r\n")
    target = lines[0].split(b" ")[1] if len(lines[0].split(b" ")) > 2 else b"/"
    host = b"example.test"
    for line in lines[1:]:
        if line.lower().startswith(b"host:"):
            host = line[5:].strip()
    if target.startswith(b"/"):
        base = b"http://" + host + target
    else:
        base = target
    seeds.add("url", base)
    for reference in (b"../up?q=1", b"//other.test:8080/x", b"next#frag", b"?only"):
        seeds.add("url", base + b"\n" + reference)


def hand_made(seeds):
    """Seeds no capture provides: chunked bodies and connection scripts."""
    chunked = [
        b"5\r\nhello\r\n0\r\n\r\n",
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n",
        b"1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
        b"0\r\nA: 1\r\nB: 2\r\n\r\n",
    ]
    for seed_byte in (0x00, 0x85):
        for body in chunked:
            seeds.add("http_chunked", bytes([seed_byte]) + body)
    # tcp_connection: both opens, with every option, then data both ways,
    # reads, a close and the timers. See fuzz_targets/tcp_connection.rs
    # for the layout: two config bytes, IRS, peer TSval, SYN options
    # (flags byte, MSS, wscale, window), ts_offset, then steps.
    for config in (0x00, 0x01, 0x2B, 0x18):
        script = bytes([config, 0x00]) + struct.pack("!II", 1000, 7777)
        script += bytes([0x00]) + struct.pack("!HBH", 1460, 7, 65535)
        script += struct.pack("!I", 0)
        # A segment step is: op, modes (sequence and ACK modes), their
        # offsets, flags, options, window, then the option fields and the
        # payload length. The peer sends 100 bytes at RCV.NXT with a
        # timestamp (modes 0x06: seq = RCV.NXT, ACK = last ACK + 0).
        script += bytes([0x00, 0x06, 0x00, 0x08, 0x41, 0xFF, 0xFF, 0x01, 0x00, 100])
        # The application writes 3000 bytes and reads 100.
        script += bytes([0x07]) + struct.pack("!H", 3000)
        script += bytes([0x09]) + struct.pack("!H", 100)
        # The peer acknowledges all that was sent (modes 0x0A: ACK =
        # SND.MAX - 0).
        script += bytes([0x00, 0x0A, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00])
        # 80 ms pass, the application closes, the peer's FIN comes, and
        # 20 s pass (TIME-WAIT or FIN-WAIT-2 timers).
        script += bytes([0x0B, 0x45, 0x1C])
        script += bytes([0x02, 0x0A, 0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0x00, 0x00])
        script += bytes([0x0B, 0xC5])
        seeds.add("tcp_connection", script)
    seeds.add("url", b"http://Example.TEST:8080/a/./b/../c?x=%41#top\n../d")
    seeds.add("http_server", b"\x00GET /0 HTTP/1.1\r\nHost: a\r\n\r\n"
              b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
              b"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
              b"Expect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
              b"HEAD /3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    seeds = Seeds(sys.argv[1])
    for path in sys.argv[2:]:
        cut_capture(seeds, list(read_pcap(path)))
    hand_made(seeds)
    for target in sorted(seeds.count):
        print(f"{target:16} {seeds.count[target]:6} seeds")


if __name__ == "__main__":
    main()
