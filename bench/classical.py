"""Classical baselines on the five shared corpora: eGeMAPS + SVM and handcrafted (study 001) + RF.

Writes bench/results/classical.md (UA / WA / macro-F1 mean ± std over folds, protocol, wall time)
and keeps every run directory under runs/bench/. Run by hand (tens of minutes on 2 cores):

    .venv/bin/python bench/classical.py [--corpora emodb savee] [--systems egemaps_svm handcrafted_rf]
"""
from __future__ import annotations

import os
import sys

# bench/ holds ssl.py, named like the standard library's ssl module: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from serkit.config import load_config
from serkit.evaluation.protocol import run_experiment

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ["ravdess", "cremad", "tess", "savee", "emodb"]
#: system -> overrides applied to configs/bench/<corpus>_egemaps_svm.yaml (same data and protocol)
SYSTEMS = {
    "egemaps_svm": [],
    "handcrafted_rf": ["features.kind=handcrafted", "model.name=rf", "model.grid=null",
                       "model.params={n_estimators: 300, n_jobs: 2}"],
}
SEEDS = ["seed1_rf_random", "seed1_rf_speaker_independent"]


def pct(m: dict) -> str:
    return f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}"


def row(m: dict, system: str) -> str:
    p = m["protocol"]
    proto = f"{p['kind']} ({p['n_folds']} folds, " + \
        ("speaker-independent)" if p["speaker_independent"] else "**speaker-dependent**)")
    pub = m.get("published")
    pub_s = f"{pub['value']:.1f} ({pub['metric']}, {pub['protocol']})" if pub else ""
    return (f"| {'+'.join(m['corpora'])} | {system} | {proto} | {pct(m['ua'])} | {pct(m['wa'])} | "
            f"{pct(m['macro_f1'])} | {m['wall_time_s']:.0f} | {pub_s} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpora", nargs="*", default=CORPORA)
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS))
    ap.add_argument("--seeds", action=argparse.BooleanOptionalAction, default=True,
                    help="also run study 001's RF reproduction and its speaker-independent twin")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "classical.md"))
    ap.add_argument("--from-runs", action="store_true",
                    help="rebuild the table from runs/bench/*/metrics.json without running anything")
    args = ap.parse_args()
    console = Console()
    rows, t0 = existing_rows(args.out), time.time()
    jobs = [(ROOT / f"configs/bench/{c}_egemaps_svm.yaml", s, SYSTEMS[s], f"{c}_{s}")
            for c in args.corpora for s in args.systems]
    # corpora whose EmoBox partitions share speakers: also run them as published (speaker-dependent)
    jobs += [(p, "egemaps_svm", [], p.stem) for c in args.corpora if "egemaps_svm" in args.systems
             for p in sorted((ROOT / "configs/bench").glob(f"{c}_egemaps_svm_emobox.yaml"))]
    if args.seeds:
        jobs += [(ROOT / f"configs/seeds/{n}.yaml", "handcrafted_rf (study 001, grid search)", [], n)
                 for n in SEEDS]
    if args.from_runs:
        found = {}
        for _, system, _, name in jobs:
            mfile = ROOT / "runs" / "bench" / name / "metrics.json"
            if mfile.is_file():
                line = row(json.loads(mfile.read_text()), system)
                found[row_key(line)] = line
        write(args.out, list(found.values()), 0.0)
        console.print(Path(args.out).read_text())
        return
    for cfg_path, system, overrides, name in jobs:
        cfg = load_config(cfg_path, overrides + [f"name={name}", "report=false"])
        console.rule(name)
        res = run_experiment(cfg, ROOT / "runs" / "bench" / name, progress=False, console=console)
        line = row(res.metrics, system)
        rows = existing_rows(args.out)  # re-read: another bench process may have added rows
        rows[row_key(line)] = line
        write(args.out, list(rows.values()), time.time() - t0)
    console.print(Path(args.out).read_text())


def row_key(line: str) -> tuple[str, str, str]:
    cells = [c.strip() for c in line.strip("|").split("|")]
    return cells[0], cells[1], cells[2].split(" (")[0]


def existing_rows(out: str) -> dict:
    """Rows already in the table (kept unless the same corpus/system/protocol is rerun)."""
    path = Path(out)
    if not path.is_file():
        return {}
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("| ") and
             not ln.startswith("| corpora") and not ln.startswith("|---")]
    return {row_key(ln): ln for ln in lines}


def write(out: str, rows: list[str], total: float) -> None:
    head = ["# Classical baselines (bench/classical.py)", "",
            "UA = unweighted accuracy (balanced), WA = accuracy, macro-F1; % mean ± std over folds "
            "(population std). Wall time on the 2-core development machine, feature extraction "
            "included unless cached. eGeMAPS/handcrafted features are z-normalised per speaker "
            "(no labels used) in the configs/bench runs; the study 001 rows use the paper's pipeline.",
            "",
            "| corpora | system | protocol | UA % | WA % | macro-F1 % | wall s | published |",
            "|---|---|---|---|---|---|---|---|"]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(head + rows + ["", f"Wall time of the last bench invocation: {total / 60:.1f} min", ""]))


if __name__ == "__main__":
    main()
