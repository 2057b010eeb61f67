"""The drill's network: three sites as network namespaces on one bridge, and how a site is lost.

    root namespace: bridge drl-wan 10.77.0.254/24 (nginx on 127.0.0.1 and the load live here)
      ├─ veth drl-a-wan ── eth0 10.77.0.1 in namespace drl-a  (data site A)
      ├─ veth drl-b-wan ── eth0 10.77.0.2 in namespace drl-b  (data site B)
      └─ veth drl-w-wan ── eth0 10.77.0.3 in namespace drl-w  (witness site W)

Namespaces, not loopback ports, because losing a site must look like losing a machine room:
every process gone at once *and* no packet answered any more (no RST, no "connection
refused"), which is what makes clients, Patroni and Sentinel wait on timeouts. Setting the
bridge-side veth down gives exactly that; SIGKILL to every pid in the namespace takes the
processes.

Everything is named with the `drl-` prefix, so `remove_leftovers()` can find what a crashed
earlier run (SIGKILL, power cut) left, and remove it, before a new run builds its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

BRIDGE = "drl-wan"
BRIDGE_ADDRESS = "10.77.0.254"
SUBNET = "10.77.0.0/24"
PREFIX = "drl-"
COMMAND_TIMEOUT = 10.0  # one `ip` call


@dataclass(frozen=True)
class Site:
    """One site: its namespace, its address on the bridge, and the veth that joins them."""

    name: str  # "a", "b", "w"
    address: str

    @property
    def namespace(self) -> str:
        """The site's network namespace: drl-<name>."""
        return f"{PREFIX}{self.name}"

    @property
    def veth(self) -> str:
        """The bridge-side end (root namespace); the other end is eth0 inside the namespace."""
        return f"{PREFIX}{self.name}-wan"

    def command(self, *args: str) -> list[str]:
        """args run inside this site's namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]


SITE_A = Site("a", "10.77.0.1")
SITE_B = Site("b", "10.77.0.2")
SITE_W = Site("w", "10.77.0.3")
SITES = (SITE_A, SITE_B, SITE_W)
DATA_SITES = (SITE_A, SITE_B)


class TopologyError(RuntimeError):
    """An `ip` command failed (its output is in the message)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip args`; raise TopologyError with its output when it fails and check is set."""
    result = subprocess.run(  # noqa: S603 - our own arguments
        ["ip", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and result.returncode != 0:
        raise TopologyError(f"ip {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def namespace_pids(namespace: str) -> list[int]:
    """Every process in the namespace (`ip netns pids`); empty when it does not exist."""
    result = ip("netns", "pids", namespace, check=False)
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def kill_namespace(namespace: str, deadline: float = 5.0) -> None:
    """SIGKILL every process in the namespace, again until none is left (a dying parent may
    still fork for an instant), for at most `deadline` seconds."""
    stop_at = time.monotonic() + deadline
    while True:
        pids = [pid for pid in namespace_pids(namespace) if pid != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() >= stop_at:
            return
        time.sleep(0.05)


def _existing_namespaces() -> list[str]:
    """Every network namespace `ip netns` knows (names only)."""
    listed = ip("netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def foreign_addresses() -> list[str]:
    """Interfaces, other than the drill's own, with an address in SUBNET: a network the drill
    would clash with."""
    shown = ip("-o", "-4", "addr", "show", "to", SUBNET, check=False).stdout.splitlines()
    names = [line.split()[1] for line in shown if len(line.split()) > 1]
    return [name for name in names if not name.startswith(PREFIX)]


def remove_leftovers() -> list[str]:
    """Remove every `drl-` namespace (after killing what runs in it), veth and the bridge; what
    was removed, for the log. Safe to call when nothing is there."""
    removed = []
    for namespace in _existing_namespaces():
        if namespace.startswith(PREFIX):
            kill_namespace(namespace)
            ip("netns", "delete", namespace, check=False)
            removed.append(f"namespace {namespace}")
    links = ip("-o", "link", "show", check=False).stdout.splitlines()
    for line in links:
        name = line.split(":", 2)[1].strip().split("@", 1)[0] if ":" in line else ""
        if name.startswith(PREFIX):
            ip("link", "delete", name, check=False)
            removed.append(f"link {name}")
    return removed


def build(sites: Sequence[Site] = SITES) -> None:
    """The bridge with its address, and a namespace joined to it by a veth per site, lo up."""
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    for site in sites:
        ip("netns", "add", site.namespace)
        ip("link", "add", site.veth, "type", "veth", "peer", "name", "eth0", "netns", site.namespace)
        ip("link", "set", site.veth, "master", BRIDGE)
        ip("link", "set", site.veth, "up")
        ip("-n", site.namespace, "addr", "add", f"{site.address}/24", "dev", "eth0")
        ip("-n", site.namespace, "link", "set", "eth0", "up")
        ip("-n", site.namespace, "link", "set", "lo", "up")


def set_link(site: Site, up: bool) -> None:
    """Cut a site off the network (down) or join it again (up), at its bridge-side veth."""
    ip("link", "set", site.veth, "up" if up else "down")


def lose(site: Site) -> float:
    """Lose the whole site at once: its link goes down first, so nothing it had in flight is
    answered (no RST from the dying processes reaches anyone), then every process in it gets
    SIGKILL. Returns the wall-clock time of the loss."""
    at = time.time()
    set_link(site, up=False)
    kill_namespace(site.namespace)
    return at
