"""`score verify RECORD.json`: recompute a published evaluation record (ALGORITHMS.md §2) and say what differs.

Works offline from the report's `record.json` alone. `score_record.verify` is the pure check; `main` reads the file
and prints with rich. Exit status 0 when the record checks out, 1 when it does not, 2 when the file is unreadable.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from rich.console import Console

from evaluation.score_record import verify


def main(argv: Sequence[str] | None = None) -> int:
    """Read RECORD.json, recompute the ranking and print OK or each difference."""
    parser = argparse.ArgumentParser(prog="score verify", description=__doc__.splitlines()[0])
    parser.add_argument("record", help="the evaluation's record.json (bidroom-score-v1)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        with open(args.record, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError) as err:
        console.print(f"[red]cannot read {args.record}:[/red] {err}")
        return 2
    problems = verify(record)
    if problems:
        console.print(f"[red]MISMATCH[/red] {args.record}: {len(problems)} difference(s)")
        for p in problems:
            console.print(f"  - {p}", markup=False)
        return 1
    ranking = record["ranking"]
    console.print(f"[green]OK[/green] {args.record}: {len(ranking)} bidders ranked as published, "
                  f"{len(record['tie_draws'])} tie draw(s) recomputed")
    for line in ranking:
        figure = line["total"] if line["total"] is not None else line["evaluated_price"]
        console.print(f"  {line['rank']:>3}  {line['bidder']}  {figure}", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
