"""Sender allow-lists: networks written by managers, checked against a request's address."""

import ipaddress
import re

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """CIDRs, one per line or comma-separated; ValueError names the first bad one."""
    networks = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network (e.g. 45.92.116.0/22)") from None
    return networks


def sender_allowed(networks_text: str, remote_addr: str | None) -> bool:
    """True when no allow-list is set, or ``remote_addr`` lies in one of its networks."""
    networks = parse_networks(networks_text)
    if not networks:
        return True
    if remote_addr is None:
        return False
    address = ipaddress.ip_address(remote_addr)
    return any(address in network for network in networks)
