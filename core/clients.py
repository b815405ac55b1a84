"""Who the client is: its address, as the direct peer or, behind trusted proxies, from X-Forwarded-For.

One rule for every per-client limit (sign-in throttling, the public verification upload): with
BIDROOM_TRUSTED_PROXIES set, the forwarded list is read from the right (the entry the nearest proxy added) and
the first address that is not itself a trusted proxy is the client; entries further left were written by the
client and are not believed. Without trusted proxies the header is ignored.
"""
from __future__ import annotations

import functools
import ipaddress
from typing import Iterable


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def client_address(peer: str | None, forwarded: Iterable[str], trusted_proxies: tuple[str, ...]) -> str:
    """The client's address from the direct peer, the X-Forwarded-For header values and the trusted proxies."""
    peer = peer or "unknown"
    networks = _networks(tuple(trusted_proxies))
    if not networks:
        return peer

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if not trusted(peer):
        return peer
    hops = [h.strip() for v in forwarded for h in v.split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client  # garbage from further left: the last address a trusted proxy vouched for
        client = hop
        if not trusted(hop):
            return hop
    return client
