"""scripts/bench: measures, prints a markdown report and writes it with a plot under bench/results/."""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from . import coldstart, fleet, prune_scale, report, workflow
from .common import ROOT, ZIPS, Local, say


COST_DATABASES = 3


def package_sizes() -> dict[str, tuple[int, int]]:
    sizes = {}
    for function in coldstart.FUNCTIONS:
        package = ZIPS / f"backup-{function}" / "bootstrap.zip"
        with zipfile.ZipFile(package) as archive:
            sizes[function] = (package.stat().st_size, archive.getinfo("bootstrap").file_size)
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="cold starts per function and language (>= 10)")
    parser.add_argument("--prune-snapshots", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--scale-databases", type=int, nargs="+", default=[1, 10, 100, 1000],
                        help="database counts of the executions measured for the history limit")
    parser.add_argument("--slow-polls", type=int, default=10, help="polls each wait takes in the slow run")
    parser.add_argument("--fleet-databases", type=int, default=20, help="databases of the fleet run on the clock")
    parser.add_argument("--fleet-scale", type=int, default=3600, help="the clock's speed in the fleet run")
    parser.add_argument("--fleet-concurrency", type=int, default=5,
                        help="max_concurrent_databases of the fleet run (the module's default: 5)")
    parser.add_argument("--only-fleet", action="store_true", help="measure the fleet on the clock only")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    local = Local()
    started = time.monotonic()
    sections: list[list[str]] = []
    cold = None
    if not args.only_fleet:
        say("cold starts")
        cold = coldstart.ColdStart(local, args.runs).measure()
        zips = package_sizes()
        say("prune at scale")
        prunes = prune_scale.measure(local, args.prune_snapshots)
        say("whole backups")
        # Cost from runs of the demo's size, before the large runs: many concurrent cold starts on a
        # small machine (and the large runs' aftermath) would inflate the emulator's durations (GB-s),
        # not Lambda's.
        first = workflow.run(local, COST_DATABASES)
        slow = workflow.run(local, COST_DATABASES, polls=args.slow_polls)
        scale = [workflow.run(local, count) for count in args.scale_databases]
        sections += [report.cold_start_table(cold, zips), report.prune_table(prunes), report.cost_lines(first, slow),
                     report.scale_lines(scale, slow)]
    say("a fleet on the clock")
    sections.append(report.fleet_lines(fleet.run(local, args.fleet_databases, args.fleet_scale,
                                                 args.fleet_concurrency)))

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
    lines = [
        f"## database-backup benchmark, {stamp}, commit {commit}",
        "",
        f"Machine: {platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}; "
        "local AWS: moto behind scripts/python/local_aws's gateway, every function a fresh process under the Lambda "
        f"Runtime API. Took {time.monotonic() - started:.0f} s.",
        "",
    ]
    for section in sections:
        lines += [*section, ""]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{stamp}-fleet-{args.fleet_databases}x{args.fleet_concurrency}" if args.only_fleet else stamp
    (out / f"{name}.md").write_text(text)
    if cold is not None:
        (out / "latest.md").write_text(text)
        report.plot(cold, out / f"{stamp}.png")
        report.plot(cold, out / "latest.png")
    say(f"written: {out / (name + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
