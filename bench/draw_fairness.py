"""Fairness and speed of the verifiable draw (ALGORITHMS.md §1).

Runs many draws of one quota over a pool where every expert has their own employer, each with a fresh
secret and fresh supervisor entropy, and tests the selection counts against uniform with Pearson's
chi-square. scipy is not a dependency, so the chi-square tail comes from the regularized upper incomplete
gamma function Q(k/2, x/2), computed below by its power series or its continued fraction (the usual split at
x = a + 1), with the Wilson–Hilferty normal approximation printed beside it as a cross-check.

    .venv/bin/python bench/draw_fairness.py [--draws 20000] [--pool 200] [--count 5]
"""
from __future__ import annotations

import argparse
import math
import secrets
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from evidence import randomness as rnd  # noqa: E402

# Statistics, not money: floats are right here.
EPS = 1e-15
MAX_ITER = 10_000


def _lower_series(a: float, x: float) -> float:
    """P(a, x) by the series e^-x x^a / Γ(a+1) · Σ x^n / ((a+1)…(a+n)); converges fast for x < a + 1."""
    term = 1.0 / a
    total = term
    for n in range(1, MAX_ITER):
        term *= x / (a + n)
        total += term
        if abs(term) < abs(total) * EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction, evaluated with the modified Lentz method; for x ≥ a + 1."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < EPS:
            break
    return h * math.exp(-x + a * math.log(x) - math.lgamma(a))


def chi2_sf(statistic: float, dof: int) -> float:
    """P(χ²_dof ≥ statistic) = Q(dof/2, statistic/2)."""
    if statistic <= 0:
        return 1.0
    a, x = dof / 2.0, statistic / 2.0
    if x < a + 1.0:
        return 1.0 - _lower_series(a, x)
    return _upper_fraction(a, x)


def chi2_sf_wilson_hilferty(statistic: float, dof: int) -> float:
    """Wilson–Hilferty: (χ²/k)^(1/3) is close to normal with mean 1 − 2/(9k) and variance 2/(9k)."""
    k = float(dof)
    z = ((statistic / k) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * k))) / math.sqrt(2.0 / (9.0 * k))
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def pearson(counts: Counter, ids: list[str], total: int) -> float:
    expected = total / len(ids)
    return sum((counts[i] - expected) ** 2 / expected for i in ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20_000)
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--count", type=int, default=5)
    args = parser.parse_args(argv)
    console = Console()

    ids = [f"E-{i:06d}" for i in range(args.pool)]
    candidates = [{"id": i, "employer": f"O-{i[2:]}", "quotas": ["tech"]} for i in ids]
    selected: Counter = Counter()
    first: Counter = Counter()
    elapsed = 0.0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("drawing", total=args.draws)
        for n in range(args.draws):
            request = {"draw_id": f"D-BENCH-{n}", "quotas": [{"name": "tech", "count": args.count, "backups": 0}]}
            secret, entropy = rnd.new_secret(), secrets.token_hex(16)
            started = time.perf_counter()
            outcome = rnd.draw(secret, entropy, request, candidates)
            elapsed += time.perf_counter() - started
            primaries = outcome.results[0].primaries
            selected.update(primaries)
            first[primaries[0]] += 1
            if n % 500 == 0:
                progress.update(task, completed=n)

    dof = args.pool - 1
    # Each draw picks `count` distinct people, so a person's count is binomial with variance n·p·(1 − p),
    # slightly below the multinomial variance the Pearson statistic assumes; dividing by (1 − p) corrects it.
    p = args.count / args.pool
    x_all = pearson(selected, ids, args.draws * args.count)
    x_all_adj = x_all / (1.0 - p)
    x_first = pearson(first, ids, args.draws)

    table = Table(title=f"{args.draws:,} draws of {args.count} from {args.pool} experts (distinct employers)")
    for col in ("test", "chi-square", "dof", "p (gamma)", "p (Wilson–Hilferty)"):
        table.add_column(col, justify="right")
    rows = [("all primaries", x_all), ("all primaries, ×1/(1−p)", x_all_adj), ("first primary only", x_first)]
    for label, x in rows:
        table.add_row(label, f"{x:.2f}", str(dof), f"{chi2_sf(x, dof):.4f}", f"{chi2_sf_wilson_hilferty(x, dof):.4f}")
    console.print(table)
    counts = sorted(selected[i] for i in ids)
    console.print(f"selections per expert: min {counts[0]}, max {counts[-1]}, expected {args.draws * p:.0f}")
    console.print(f"time in draw(): {elapsed:.2f} s total, {elapsed / args.draws * 1e3:.3f} ms per draw "
                  f"({args.draws / elapsed:,.0f} draws/s)")
    p_value = chi2_sf(x_all, dof)
    verdict = "[green]uniform (p > 0.01)[/]" if p_value > 0.01 else "[red]NOT uniform (p ≤ 0.01)[/]"
    console.print(f"selection counts vs uniform: p = {p_value:.4f} → {verdict}")
    return 0 if p_value > 0.01 else 1


if __name__ == "__main__":
    raise SystemExit(main())
