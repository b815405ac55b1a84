"""A small closed-loop HTTP load generator: N concurrent connections for a fixed duration."""
from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import aiohttp


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] if data else float("nan")

    def line(self, name: str) -> str:
        return (f"{name:<34} {self.rps:9.0f} req/s   p50 {self.pct(50):6.2f} ms   p99 {self.pct(99):6.2f} ms"
                f"   errors {self.errors}")


async def run_load(url: str, *, concurrency: int, seconds: float, headers: dict | None = None,
                   warmup_s: float = 1.0) -> LoadResult:
    """Each of `concurrency` workers sends GETs back to back; latencies are kept after the warm-up."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    latencies: list[float] = []
    errors = 0
    count = 0
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop = measure_from + seconds

        async def worker() -> None:
            nonlocal errors, count
            while True:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                async with http.get(url) as resp:
                    await resp.read()
                    ok = resp.status == 200
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    count += 1
                    latencies.append((t1 - t0) * 1000)
                    if not ok:
                        errors += 1

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    return LoadResult(count, errors, seconds, latencies)


def summary(values: list[float]) -> str:
    return f"mean {statistics.mean(values):.1f}"
