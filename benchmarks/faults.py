"""The fault suite's figures (issue 15): kills survived / tried per stage and signal, corruptions repaired / tried
per file kind and corruption, full disk, read-only places and concurrent renders, fuzzed scenes and tracebacks,
and films identical / compared. Failures are counted, never hidden; each one is listed with why.

    python benchmarks/faults.py                 # 1 kill per stage and signal (18), every corruption (24), 300 fuzz
    python benchmarks/faults.py --kills 3 --seed 7 --fuzz 2000
    python benchmarks/faults.py --only kills    # one part: kills, corruptions, disk, fuzz
    python benchmarks/faults.py --json          # the records as JSON

A kill is survived when the signal landed inside its stage, a caught signal (SIGINT, SIGTERM) ended with 130 or 143
and no traceback, the rerun exited 0 with output identical to an uninterrupted run's (lossless frames), and no
temporary file was left. A kill that missed (the stage ended first) is counted apart, not as tried. The machinery is
tests/faults/fault_harness.py, which the CI sample in tests/faults uses too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "faults"))
sys.path.insert(0, str(HERE.parent))

import fault_harness as h  # noqa: E402


def kills(work: Path, n: int, seed: int, log) -> list[h.KillResult]:
    ref = h.make_reference(work / "ref")
    log(f"reference: stage seconds {json.dumps({k: round(v, 2) for k, v in ref.seconds.items()})}, "
        f"{len(ref.film)} frames")
    out = []
    for stage in h.STAGES:
        for sig in h.SIGNALS:
            for i in range(n):
                rng = random.Random(f"{seed}-{stage}-{sig}-{i}")
                try:
                    r = h.kill_once(ref, stage, sig, rng, work / f"{stage}-{sig}-{i}")
                except Exception as exc:  # noqa: BLE001 - a broken case is a failure in the table, not a lost run
                    r = h.KillResult(stage, sig, landed=True, why=f"harness error {type(exc).__name__}: {exc}")
                log(f"kill {stage:9s} {sig:7s} #{i}: {'ok' if r.ok else 'FAIL' if r.landed else 'missed'}"
                    f"{'' if r.ok else ' - ' + r.why}")
                if r.log:
                    log("  its stderr:\n    " + r.log.replace("\n", "\n    "))
                out.append(r)
    return out


def corruptions(work: Path, seed: int, log) -> list[h.CorruptResult]:
    bench = h.CorruptionBench(work)
    out = []
    for kind in h.FILE_KINDS:
        for how in h.CORRUPTIONS:
            try:
                r = bench.case(kind, how, random.Random(f"{seed}-{kind}-{how}"))
            except Exception as exc:  # noqa: BLE001 - as for kills
                r = h.CorruptResult(kind, how, why=f"harness error {type(exc).__name__}: {exc}")
            log(f"corrupt {kind:10s} {how:8s} {r.file}: {'ok' if r.ok else 'FAIL - ' + r.why}")
            out.append(r)
    return out


def disk(work: Path, log) -> list:
    out = []
    for case in ("full-cache", "full-output", "readonly-cache", "readonly-output"):
        r = h.disk_case(case, work / case)
        log(f"disk {case:16s}: {'skipped - ' + r.skipped if r.skipped else 'ok' if r.ok else 'FAIL - ' + r.why}")
        out.append(r)
    c = h.concurrent_renders(work / "concurrent", 4)
    log(f"concurrent x4: {'ok' if c.ok else 'FAIL - ' + c.why}")
    out.append(c)
    return out


def fuzz(n: int, seed: int, log) -> dict:
    """``n`` scenes from the schema and n/5 raw texts through ``llstudio check`` in this process."""
    from hypothesis import HealthCheck, given, settings

    counts = {"cases": 0, "valid": 0, "invalid": 0, "tracebacks": 0, "other_exit": 0, "examples": []}

    def one(text):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "fuzz.toml"
            p.write_text(text, encoding="utf-8", errors="surrogateescape")
            o = h.check_in_process(p)
        counts["cases"] += 1
        if o.traceback:
            counts["tracebacks"] += 1
            if len(counts["examples"]) < 3:
                counts["examples"].append({"scene": text, "traceback": o.traceback[-1500:]})
        elif o.rc == 0:
            counts["valid"] += 1
        elif o.rc == 2:
            counts["invalid"] += 1
        else:
            counts["other_exit"] += 1

    common = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=False)
    import hypothesis

    @hypothesis.seed(seed)
    @settings(max_examples=n, **common)
    @given(h.scene_strategy(h.CORRUPT_SCENE))
    def scenes(d):
        one(h.to_toml(d))

    @hypothesis.seed(seed)
    @settings(max_examples=max(1, n // 5), **common)
    @given(h.text_strategy())
    def texts(t):
        one(t)

    scenes()
    texts()
    log(f"fuzz: {counts['cases']} cases, {counts['valid']} valid, {counts['invalid']} refused (exit 2), "
        f"{counts['tracebacks']} tracebacks, {counts['other_exit']} other exit statuses")
    return counts


def _ratio(rows, key, ok) -> dict:
    agg = defaultdict(lambda: [0, 0])
    for r in rows:
        agg[key(r)][1] += 1
        agg[key(r)][0] += bool(ok(r))
    return agg


def table(results: dict) -> str:
    lines = []
    if "kills" in results:
        ks = results["kills"]
        tried = [r for r in ks if r.landed]
        lines.append("kills survived / tried (missed: the stage ended before the signal)")
        lines.append(f"  {'stage':10s}" + "".join(f"{s:>12s}" for s in h.SIGNALS))
        for st in h.STAGES:
            cells = []
            for sig in h.SIGNALS:
                rows = [r for r in ks if r.stage == st and r.signal == sig]
                t = [r for r in rows if r.landed]
                miss = len(rows) - len(t)
                cells.append(f"{sum(r.ok for r in t)}/{len(t)}" + (f" +{miss}m" if miss else ""))
            lines.append(f"  {st:10s}" + "".join(f"{c:>12s}" for c in cells))
        lines.append(f"  total      {sum(r.ok for r in tried)}/{len(tried)} survived, "
                     f"{len(ks) - len(tried)} missed")
    if "corruptions" in results:
        cs = results["corruptions"]
        lines.append("corruptions repaired / tried (ran, warned naming the file, identical film)")
        lines.append(f"  {'file':12s}" + "".join(f"{c:>10s}" for c in h.CORRUPTIONS))
        for kind in h.FILE_KINDS:
            row = {r.how: r for r in cs if r.kind == kind}
            lines.append(f"  {kind:12s}" + "".join(f"{('1/1' if row[c].ok else '0/1') if c in row else '-':>10s}"
                                                   for c in h.CORRUPTIONS))
        lines.append(f"  total        {sum(r.ok for r in cs)}/{len(cs)} repaired "
                     f"({sum(r.ran for r in cs)} ran, {sum(r.warned for r in cs)} warned, "
                     f"{sum(r.identical for r in cs)} identical)")
    if "disk" in results:
        lines.append("full disk, read-only places, concurrent renders")
        for r in results["disk"]:
            name = getattr(r, "case", None) or f"concurrent x{r.processes}"
            state = f"skipped ({r.skipped})" if getattr(r, "skipped", "") else "ok" if r.ok else "FAIL"
            lines.append(f"  {name:16s} {state}")
    if "fuzz" in results:
        f = results["fuzz"]
        lines.append(f"fuzz cases / tracebacks: {f['cases']} / {f['tracebacks']} ({f['valid']} valid, "
                     f"{f['invalid']} refused with exit 2, {f['other_exit']} other exits)")
    films = [(r.identical) for r in results.get("kills", []) if r.landed and r.resumed_rc == 0]
    films += [r.identical for r in results.get("corruptions", []) if r.ran]
    conc = [r for r in results.get("disk", []) if hasattr(r, "processes")]
    compared = len(films) + sum(r.processes for r in conc if r.rcs and all(rc == 0 for rc in r.rcs))
    identical = sum(films) + sum(r.identical for r in conc)
    lines.append(f"films identical / compared: {identical}/{compared}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=1, metavar="N", help="kills per stage and signal (default 1)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--fuzz", type=int, default=300, metavar="N", help="fuzzed scenes (default 300)")
    ap.add_argument("--only", choices=["kills", "corruptions", "disk", "fuzz"], action="append")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--work", default=None, help="keep the runs here (default: a temporary directory)")
    args = ap.parse_args(argv)
    parts = args.only or ["kills", "corruptions", "disk", "fuzz"]
    work = Path(args.work or tempfile.mkdtemp(prefix="llstudio-faults-"))
    t0 = time.monotonic()

    def log(msg):
        print(f"[{time.monotonic() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    results: dict = {}
    if "kills" in parts:
        results["kills"] = kills(work / "kills", args.kills, args.seed, log)
    if "corruptions" in parts:
        results["corruptions"] = corruptions(work / "corrupt", args.seed, log)
    if "disk" in parts:
        results["disk"] = disk(work / "disk", log)
    if "fuzz" in parts:
        results["fuzz"] = fuzz(args.fuzz, args.seed, log)
    if args.json:
        print(json.dumps({k: (v if isinstance(v, dict) else [asdict(r) for r in v]) for k, v in results.items()},
                         indent=2, default=str))
    else:
        print(table(results))
        print(f"({time.monotonic() - t0:.0f} s, seed {args.seed}, work in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
