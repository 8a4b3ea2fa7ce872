"""Helpers the bench scripts share: free ports, a private redis-server, medians, RSS."""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    """This process's resident set size now (not the peak), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class RedisServer:
    """A redis-server of our own on a free loopback port (never the shared 6379)."""

    def __init__(self, tmp: str | Path, *args: str, decode: bool = False) -> None:
        import redis

        from kubestack_ai.plugins.redis.connection import quiet_handshake

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # no CLIENT SETINFO / maintenance handshake: Redis < 7.2 answers ERR, which the
        # diagnosis counts (error_replies) and then takes a 1 s second reading for
        self.client = redis.Redis(port=self.port, decode_responses=decode,
                                  **quiet_handshake())
        for _ in range(500):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)
