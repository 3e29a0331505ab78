"""One command for every benchmark; writes docs/performance.md.

    python bench/run_all.py            # full run (a few minutes on 2 cores)
    python bench/run_all.py --quick    # fewer rounds, to check that everything runs

Each figure is reported against bare ``codex exec`` running the same scripted turn on the same
machine in the same run, never as an absolute wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import codex_version, machine

HERE = Path(__file__).parent
DOC = HERE.parent / "docs" / "performance.md"


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=True
    )
    # Each benchmark prints its machine line first; the page prints it once.
    lines = done.stdout.strip().splitlines()
    return "\n".join(line for line in lines if not line.startswith("machine:"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    sections = [
        ("The plugin against the official SDK", "vs_sdk.py", ["--rounds", "6" if quick else "30"]),
        (
            "The plugin's own work per turn",
            "own_cost.py",
            ["--turns", "6" if quick else "30", "--burst", "4" if quick else "16"],
        ),
        (
            "What the agents' profile costs a plain turn",
            "profile_cost.py",
            ["--turns", "20" if quick else "100"],
        ),
        ("Turns on each engine", "engines.py", ["--rounds", "4" if quick else "20"]),
        (
            "Agents at once, and memory",
            "concurrency.py",
            [
                *("--fanout", "1", "4", "16"),
                *("--rounds", "2" if quick else "5"),
                *("--idle-agents", "10" if quick else "50"),
            ],
        ),
        (
            "Many agents, one account",
            "account_admission.py",
            ["--agents", "16", "--streams", "3"],
        ),
        ("Host-tool calls", "bridge_cost.py", ["--calls", "200" if quick else "500"]),
        (
            "Confinement and codex's features",
            "sandbox_cost.py",
            ["--rounds", "3" if quick else "10", "--floor", "3" if quick else "30"],
        ),
        ("Rollout scaling", "rollout_scaling.py", ["--sizes", "1", "50", "200"]),
    ]
    body = []
    for title, script, extra in sections:
        print(f"running {script} …", file=sys.stderr)
        body.append(
            f"## {title}\n\n`python bench/{script} {' '.join(extra)}`\n\n{run(script, *extra)}\n"
        )
    from plexum_openai_provider._codex.binary import bundled_codex

    version = codex_version(bundled_codex() or "codex")
    DOC.write_text(
        "# Performance\n\n"
        f"Measured {dt.date.today():%Y-%m-%d} on {machine()}, with {version}, by\n"
        "`python bench/run_all.py` (which wrote this page). The model is the scripted server of\n"
        "`plexum_openai_provider.testing` on 127.0.0.1, so what is measured is codex and the plugin,\n"
        "not a model. Ratios are against bare `codex exec` running the same turn in the same run,\n"
        "and the strongest peer, the official Python SDK `openai-codex` (the same codex version, one\n"
        "app-server), runs the same turns; this machine is shared and noisy, so read ratios, not\n"
        "absolute times. `pip install -e '.[dev,bench]'` installs what the benchmarks need.\n\n"
        + "\n".join(body)
        + "\n"
        + (HERE / "performance_notes.md").read_text()
    )
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
