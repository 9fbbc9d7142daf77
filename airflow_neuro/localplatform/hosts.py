"""The hosts file jobs see as /etc/hosts: the machine's own, then every live job's names.

Jobs share the machine's network, so a job's internal hostnames are the loopback address.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .records import Job

MACHINE_HOSTS = Path("/etc/hosts")
LOOPBACK = "127.0.0.1"
JOBS_HEADER = "# Live jobs of the airflow-neuro local platform"


def _render(machine: str, jobs: Iterable[Job]) -> str:
    lines = [machine.rstrip("\n")] if machine.strip() else []
    lines.append(JOBS_HEADER)
    for job in jobs:
        names = [job.internal_hostname]
        if job.internal_hostname_named is not None:
            names.append(job.internal_hostname_named)
        lines.append(" ".join([LOOPBACK, *names]))
    return "\n".join(lines) + "\n"


class HostsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, live: Iterable[Job]) -> None:
        # Read each time: the machine's own entries may have changed since the last write.
        try:
            machine = MACHINE_HOSTS.read_text()
        except FileNotFoundError:
            machine = ""
        content = _render(machine, live).encode()
        # Rewritten in place, never replaced by a rename: running jobs have this inode bound
        # at /etc/hosts, and would go on reading a replaced file's old content.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        with open(fd, "wb") as f:
            f.write(content)
            f.truncate()
