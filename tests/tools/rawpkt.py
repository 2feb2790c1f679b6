#!/usr/bin/env python3
"""What a root process inside a container can send: hand-made frames and packets.

Used by tests/attacks.rs (standard library only). Each command sends and exits:

  rawpkt.py udp4 IFACE DSTMAC SRCIP DSTIP DPORT PAYLOAD   an Ethernet frame to DSTMAC
  rawpkt.py syn4 IFACE DSTMAC SRCIP DSTIP DPORT           a TCP SYN in a frame to DSTMAC
  rawpkt.py ra6 IFACE PREFIX                              a router advert to ff02::1:
                                                          default router, PREFIX/64 autonomous
  rawpkt.py garp IFACE IP                                 a gratuitous ARP reply claiming IP
  rawpkt.py na6 IFACE TARGET                              an unsolicited neighbour advert (override)
                                                          claiming TARGET for IFACE's MAC
The frames carry IFACE's own source MAC unless NSNET_SRCMAC is set.
"""

import os
import socket
import struct
import sys


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def own_mac(iface):
    with open(f"/sys/class/net/{iface}/address") as f:
        return f.read().strip()


def ipv4_packet(src, dst, proto, payload):
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def send_frame(iface, dst_mac, ethertype, packet):
    src_mac = os.environ.get("NSNET_SRCMAC") or own_mac(iface)
    frame = mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ethertype) + packet
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((iface, 0))
        s.send(frame)


def udp4(iface, dst_mac, src, dst, dport, payload):
    data = payload.encode()
    udp = struct.pack("!HHHH", 40000, int(dport), 8 + len(data), 0) + data
    send_frame(iface, dst_mac, 0x0800, ipv4_packet(src, dst, 17, udp))


def syn4(iface, dst_mac, src, dst, dport):
    tcp = struct.pack("!HHIIBBHHH", 40001, int(dport), 1000, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    send_frame(iface, dst_mac, 0x0800, ipv4_packet(src, dst, 6, tcp))


def ra6(iface, prefix):
    # Type 134, code 0, checksum (the kernel fills it in), hop limit 64, no
    # flags, router lifetime 1800 s, reachable and retransmit timers 0; then a
    # prefix information option: /64, on-link and autonomous, long lifetimes.
    ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    pio = struct.pack("!BBBBIII16s", 3, 4, 64, 0xC0, 86400, 14400, 0,
                      socket.inet_pton(socket.AF_INET6, prefix))
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        index = socket.if_nametoindex(iface)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        s.sendto(ra + pio, ("ff02::1", 0, 0, index))


def garp(iface, ip):
    src_mac = os.environ.get("NSNET_SRCMAC") or own_mac(iface)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac_bytes(src_mac),
                      socket.inet_aton(ip), b"\xff" * 6, socket.inet_aton(ip))
    send_frame(iface, "ff:ff:ff:ff:ff:ff", 0x0806, arp)


def na6(iface, target):
    src_mac = os.environ.get("NSNET_SRCMAC") or own_mac(iface)
    na = struct.pack("!BBHI16s", 136, 0, 0, 0x20000000,
                     socket.inet_pton(socket.AF_INET6, target))
    tlla = struct.pack("!BB6s", 2, 1, mac_bytes(src_mac))
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        index = socket.if_nametoindex(iface)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        s.sendto(na + tlla, ("ff02::1", 0, 0, index))


COMMANDS = {"udp4": udp4, "syn4": syn4, "ra6": ra6, "garp": garp, "na6": na6}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
