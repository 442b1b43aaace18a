"""The project's `make bench` figures next to the peers', as a Markdown table and a PNG chart.

    .venv/bin/python -m bench.chart --peers /tmp/peers   # run.sh --out /tmp/peers: its results.json

reads `bench/results/latest.json` (written by `make bench`) and the peers' `results.json`
(written by `/work/shared/bench/run.sh --out DIR`; every round is averaged), prints one Markdown
table (server CPU ms per request, req/s, p99 for point, list and nested) and writes
`bench/results/chart.png`: CPU per request per query, on a log scale, one bar per server.
Run both benchmarks one after the other, so that the figures come from one window.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from bench.run import RESULTS_DIR

PROJECT = "ordergraph"
QUERIES = ("point", "list", "nested")
# `make bench`'s query names, as the peers' harness names the same three operations.
PROJECT_QUERIES = {"product by id": "point", "50 users": "list", "nested users/orders": "nested"}


@dataclass(frozen=True)
class Figure:
    cpu_ms: float | None
    rps: float | None
    p99_ms: float | None


Figures = dict[str, dict[str, Figure]]  # server -> query -> figure


def project_figures(report: dict[str, Any]) -> dict[str, Figure]:
    return {
        PROJECT_QUERIES[row["name"]]: Figure(row["cpu_ms_per_request"], row["rps"], row["p99_ms"])
        for row in report["results"]
        if row["name"] in PROJECT_QUERIES
    }


def peer_figures(report: dict[str, Any]) -> Figures:
    """Each peer's figures, averaged over the rounds that measured them."""
    samples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for round_ in report.get("rounds", []):
        for row in round_.get("rows", []):
            if not row.get("skipped") and row.get("query") in QUERIES:
                samples[row["peer"], row["query"]].append(row)
    figures: Figures = defaultdict(dict)
    for (peer, query), rows in samples.items():
        figures[peer][query] = Figure(
            _mean(r.get("server_cpu_ms_per_req") for r in rows),
            _mean(r.get("rps") for r in rows),
            _mean(r["p99_us"] / 1000 if r.get("p99_us") is not None else None for r in rows),
        )
    return dict(figures)


def _mean(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return mean(known) if known else None


def markdown(figures: Figures) -> str:
    head = "| server | " + " | ".join(f"{q} CPU ms/req | {q} req/s | {q} p99 ms" for q in QUERIES)
    lines = [head + " |", "|---|" + "---:|" * (3 * len(QUERIES))]
    for server, by_query in figures.items():
        cells = []
        for query in QUERIES:
            figure = by_query.get(query, Figure(None, None, None))
            cells += [_cell(figure.cpu_ms, 2), _cell(figure.rps, 0), _cell(figure.p99_ms, 1)]
        lines.append(f"| {server} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def chart(figures: Figures, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    servers = list(figures)
    width = 0.8 / max(1, len(servers))
    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    for n, server in enumerate(servers):
        values = [figures[server].get(q, Figure(None, None, None)).cpu_ms for q in QUERIES]
        positions = [i + (n - (len(servers) - 1) / 2) * width for i in range(len(QUERIES))]
        bars = ax.bar(
            [p for p, v in zip(positions, values, strict=True) if v is not None],
            [v for v in values if v is not None],
            width,
            label=server,
            edgecolor="black" if server == PROJECT else None,
            linewidth=1.5 if server == PROJECT else 0,
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7, rotation=90, padding=2)
    ax.set_xticks(range(len(QUERIES)), QUERIES)
    ax.set_yscale("log")
    ax.set_ylabel("server CPU ms per request (log scale; lower is better)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chart", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--project", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--peers", type=Path, help="the peers' results.json (or its directory)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "chart.png")
    args = parser.parse_args(argv)
    project = json.loads(args.project.read_text())
    figures: Figures = {PROJECT: project_figures(project)}
    title = f"{PROJECT} {project.get('commit') or ''} ({project['when']})"
    if args.peers is not None:
        peers_path = args.peers / "results.json" if args.peers.is_dir() else args.peers
        figures.update(peer_figures(json.loads(peers_path.read_text())))
    print(markdown(figures))
    chart(figures, args.out, title)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
