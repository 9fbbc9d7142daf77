"""Who listens on a loopback TCP port, as Linux's /proc tells it.

Jobs share the machine's network, so a job's declared HTTP port may be held by anyone: another
job, the platform itself, any service on the machine. Each job runs in a PID namespace of its
own, which tells its processes apart from all others; these functions read the listening
sockets from /proc/net/tcp{,6} and the sockets each process holds from /proc/<pid>/fd.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterator

PROC = "/proc"
# The TCP state column of /proc/net/tcp{,6}: 0A is TCP_LISTEN.
LISTEN = "0A"
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(hex_address: str) -> IPAddress:
    # The kernel prints each 32-bit word of the address as a number in host byte order.
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    return ipaddress.ip_address(struct.pack(f"={len(words)}I", *words))


def _takes_loopback(address: IPAddress) -> bool:
    """Whether a listener bound to ``address`` may be given a connection to 127.0.0.1.

    An IPv6 wildcard counts, as it takes IPv4 connections unless it is IPV6_V6ONLY, which
    /proc does not show; ::1 and other loopback addresses do not, as they never get one.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_unspecified or address == LOOPBACK


def loopback_listeners(port: int, proc: str = PROC) -> set[int]:
    """The inodes of the listening sockets that a connection to 127.0.0.1:``port`` may reach."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, "net", table)) as f:
                lines = f.readlines()[1:]  # the first is the column names
        except FileNotFoundError:
            continue  # a kernel without IPv6
        for line in lines:
            fields = line.split()
            # sl, local_address, rem_address, st, tx_queue:rx_queue, tr:tm->when, retrnsmt,
            # uid, timeout, inode
            hex_address, _, hex_port = fields[1].partition(":")
            if (
                fields[3] == LISTEN
                and int(hex_port, 16) == port
                and _takes_loopback(_address(hex_address))
            ):
                inodes.add(int(fields[9]))
    return inodes


def pid_namespace_of(pid: int | str, proc: str = PROC) -> int | None:
    """The inode of the process's PID namespace; None when it is gone or not ours to read."""
    try:
        return os.stat(os.path.join(proc, str(pid), "ns", "pid")).st_ino
    except OSError:
        return None


def own_pid_namespace() -> int:
    namespace = pid_namespace_of("self")
    assert namespace is not None, "a process can always read its own namespace"
    return namespace


def namespace_members(pid_ns: int, proc: str = PROC) -> Iterator[int]:
    """The ids of the processes in PID namespace ``pid_ns`` (not in the ones it nests)."""
    wanted = f"pid:[{pid_ns}]"
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            link = os.readlink(os.path.join(entry.path, "ns", "pid"))
        except OSError:
            continue  # ended meanwhile, or another user's process
        if link == wanted:
            yield int(entry.name)


def held_sockets(pid: int, proc: str = PROC) -> set[int]:
    """The inodes of the sockets among the process's open files."""
    fd_dir = os.path.join(proc, str(pid), "fd")
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return set()
    inodes: set[int] = set()
    for fd in fds:
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:[") and link.endswith("]"):
            inodes.add(int(link[len("socket:[") : -1]))
    return inodes


def listened_by_namespace(port: int, pid_ns: int, proc: str = PROC) -> bool:
    """Whether a connection to 127.0.0.1:``port`` can only reach processes of ``pid_ns``.

    That is, some listener could take it, and processes of that namespace hold every such
    listener. One of theirs among others' is not enough: the kernel gives the connection to
    someone else's 127.0.0.1 listener before the job's IPv6-only wildcard one, and spreads
    connections over listeners that share the port through SO_REUSEPORT.
    """
    listeners = loopback_listeners(port, proc)
    if not listeners:
        return False
    for pid in namespace_members(pid_ns, proc):
        listeners -= held_sockets(pid, proc)
        if not listeners:
            return True
    return False
