"""Classical baselines on the five shared corpora: eGeMAPS + SVM and handcrafted (study 001) + RF.

Each system runs ``configs/bench/<corpus>_egemaps_svm.yaml`` (same data and protocol) in one or
both variants: ``inductive`` (the config as shipped: nothing is fitted on test utterances) and
``transductive`` (``-o features.test_time_speaker_norm=true``: every speaker's features, test
speakers included, are z-normalised with that speaker's own statistics, i.e. the run uses the test
speakers' unlabelled utterances). Writes bench/results/classical.md (+ classical.json, the rows
it is built from) with the inductive rows as the headline and the transductive figures only in a
separate, labelled column and table; every run directory goes to runs/bench/<name>/. Run by hand
(tens of minutes on 2 cores):

    OMP_NUM_THREADS=1 .venv/bin/python bench/classical.py [--corpora emodb savee]
        [--systems egemaps_svm handcrafted_rf] [--variants inductive transductive] [--no-seeds]
        [--no-emobox] [--from-runs | --skip-existing] [--only NAME ...]
"""
from __future__ import annotations

import os
import sys

# bench/ holds ssl.py, named like the standard library's ssl module: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rich.console import Console  # noqa: E402

from serkit.config import TRANSDUCTIVE_NOTE, load_config  # noqa: E402
from serkit.evaluation.protocol import run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ["ravdess", "cremad", "tess", "savee", "emodb"]
#: system -> overrides applied to configs/bench/<corpus>_egemaps_svm.yaml (same data and protocol)
SYSTEMS = {
    "egemaps_svm": ["features.n_jobs=1"],
    "handcrafted_rf": ["features.kind=handcrafted", "features.n_jobs=1", "model.name=rf", "model.grid=null",
                       "model.params={n_estimators: 300, n_jobs: 1}"],
}
#: variant -> (overrides, run-name suffix); ``inductive`` is the config as shipped
VARIANTS = {
    "inductive": ([], ""),
    "transductive": (["features.test_time_speaker_norm=true"], "_transductive"),
}
SEEDS = ["seed1_rf_random", "seed1_rf_speaker_independent"]


def pct(m: dict) -> str:
    return f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}"


def jobs_for(corpora, systems, variants, seeds: bool, emobox: bool) -> list[tuple[Path, str, str, list, str]]:
    """(config, system, variant, overrides, run name) of every run asked for."""
    jobs = []
    for c in corpora:
        for s in systems:
            for v in variants:
                ov, suffix = VARIANTS[v]
                jobs.append((ROOT / f"configs/bench/{c}_egemaps_svm.yaml", s, v, SYSTEMS[s] + ov,
                             f"{c}_{s}{suffix}"))
    # corpora whose EmoBox partitions share speakers: also run them as published (speaker-dependent)
    if emobox and "egemaps_svm" in systems:
        for c in corpora:
            for p in sorted((ROOT / "configs/bench").glob(f"{c}_egemaps_svm_emobox.yaml")):
                for v in variants:
                    ov, suffix = VARIANTS[v]
                    jobs.append((p, "egemaps_svm", v, SYSTEMS["egemaps_svm"] + ov, p.stem + suffix))
    if seeds:  # study 001's own pipeline: never transductive
        jobs += [(ROOT / f"configs/seeds/{n}.yaml", "handcrafted_rf (study 001, grid search)", "inductive",
                  [], n) for n in SEEDS]
    return jobs


def make_row(m: dict, name: str, system: str, variant: str, overrides: list[str]) -> dict:
    """One table row (stored in classical.json) from a run's metrics.json."""
    p = m["protocol"]
    transductive = bool(p.get("transductive"))
    if transductive != (variant == "transductive"):
        raise ValueError(f"{name}: variant {variant!r} but the run says transductive={transductive}")
    skipped = (m.get("accounting") or {}).get("skipped") or []
    return {"name": name, "corpora": m["corpora"], "system": system, "variant": variant,
            "transductive": transductive, "transductive_note": p.get("transductive_note"),
            "protocol": {k: p.get(k) for k in ("kind", "n_folds", "speaker_independent")},
            "ua": m["ua"], "wa": m["wa"], "macro_f1": m["macro_f1"], "wall_time_s": m["wall_time_s"],
            "published": m.get("published"), "overrides": overrides,
            "rows_used": (m.get("accounting") or {}).get("rows_used"),
            "skipped": [{"path": s["path"], "kind": s["kind"]} for s in skipped],
            "n_classes": len(m.get("classes") or []),
            "folds": [{"fold": f.get("fold"), "ua": f["ua"], "test_speakers": f.get("test_speakers")}
                      for f in m["folds"]]}


def below_chance(rows) -> list[str]:
    """Runs with a fold whose UA is below chance (1 / number of classes), as table notes."""
    out = []
    for r in rows:
        n = r.get("n_classes") or 0
        bad = [f for f in r.get("folds", []) if n and f["ua"] < 1.0 / n]
        if bad:
            folds = ", ".join(f"{f['fold']} (test {'+'.join(map(str, f.get('test_speakers') or []))}) "
                              f"UA {100 * f['ua']:.1f}" for f in bad)
            out.append(f"`{r['name']}`: {folds} (chance {100 / n:.1f})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", nargs="*", default=CORPORA)
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=list(SYSTEMS))
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", action=argparse.BooleanOptionalAction, default=True,
                    help="also run study 001's RF reproduction and its speaker-independent twin")
    ap.add_argument("--emobox", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the published (speaker-dependent) EmoBox partitions of EmoDB / CREMA-D")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "classical.md"))
    ap.add_argument("--from-runs", action="store_true",
                    help="collect runs/bench/<name>/metrics.json into the tables without running anything")
    ap.add_argument("--skip-existing", action="store_true",
                    help="collect runs that already have runs/bench/<name>/metrics.json instead of rerunning them")
    ap.add_argument("--only", nargs="*", default=None, metavar="NAME",
                    help="run only the jobs with these run names (e.g. emodb_egemaps_svm_emobox)")
    args = ap.parse_args()
    console = Console()
    results_json = Path(args.out).with_suffix(".json")
    jobs = jobs_for(args.corpora, args.systems, args.variants, args.seeds, args.emobox)
    if args.only is not None:
        jobs = [j for j in jobs if j[4] in args.only]

    def save(row: dict) -> None:
        rows = json.loads(results_json.read_text()) if results_json.exists() else {}  # another process may write
        rows[row["name"]] = row
        results_json.parent.mkdir(parents=True, exist_ok=True)
        results_json.write_text(json.dumps(rows, indent=1) + "\n")
        write(args.out, rows)

    for cfg_path, system, variant, overrides, name in jobs:
        run_dir = ROOT / "runs" / "bench" / name
        if args.from_runs or (args.skip_existing and (run_dir / "metrics.json").is_file()):
            if (run_dir / "metrics.json").is_file():
                save(make_row(json.loads((run_dir / "metrics.json").read_text()), name, system, variant,
                              overrides))
            continue
        cfg = load_config(cfg_path, overrides + [f"name={name}", "report=false"])
        console.rule(f"{name} ({variant})")
        res = run_experiment(cfg, run_dir, progress=False, console=console)
        save(make_row(res.metrics, name, system, variant, overrides))
    if results_json.exists():
        write(args.out, json.loads(results_json.read_text()))
        console.print(Path(args.out).read_text())


def _proto(p: dict) -> str:
    n = p["n_folds"]
    return f"{p['kind']} ({n} fold{'' if n == 1 else 's'}, " + \
        ("speaker-independent)" if p["speaker_independent"] else "**speaker-dependent**)")


def _published(pub: dict | None) -> str:
    return f"{pub['value']:.1f} ({pub['metric']}, {pub['protocol']})" if pub else ""


def _order(r: dict) -> tuple:
    c = r["corpora"][0] if r["corpora"] else ""
    return (r["system"].startswith("handcrafted_rf ("), not r["protocol"]["speaker_independent"],
            CORPORA.index(c) if c in CORPORA else 99, r["system"])


def write(out: str, rows: dict) -> None:
    """classical.md from the stored rows: inductive rows first (the headline), with the transductive
    UA of the same configuration in its own labelled column; the transductive rows in full below."""
    inductive = sorted((r for r in rows.values() if not r["transductive"]), key=_order)
    transductive = sorted((r for r in rows.values() if r["transductive"]), key=_order)
    twin = {r["name"].removesuffix("_transductive"): r for r in transductive}
    lines = ["# Classical baselines (bench/classical.py)", "",
             "UA = unweighted accuracy (balanced), WA = accuracy, macro-F1; % mean ± std over folds "
             "(population std). Wall time on the 2-core development machine (shared with other jobs), "
             "feature extraction included unless cached. eGeMAPS/handcrafted rows use "
             "`configs/bench/<corpus>_egemaps_svm.yaml` (+ `features.kind=handcrafted`, RF for "
             "handcrafted_rf); the study 001 rows use the paper's pipeline.", "",
             "## Inductive (headline)", "",
             "Nothing is fitted on test utterances. The last-but-one column is the same configuration run "
             f"with `-o features.test_time_speaker_norm=true` ({TRANSDUCTIVE_NOTE}); it is shown for "
             "reference only, never ranked against the inductive figures.", "",
             "| corpora | system | variant | protocol | UA % | WA % | macro-F1 % | wall s | "
             "transductive UA % (test-time speaker norm; not comparable) | published |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in inductive:
        t = twin.get(r["name"])
        lines.append(f"| {'+'.join(r['corpora'])} | {r['system']} | {r['variant']} | {_proto(r['protocol'])} | "
                     f"{pct(r['ua'])} | {pct(r['wa'])} | {pct(r['macro_f1'])} | {r['wall_time_s']:.0f}"
                     f"{' †' if r.get('note') else ''} | "
                     f"{'–' if t is None else pct(t['ua'])} | {_published(r['published'])} |")
    if transductive:
        lines += ["", "## Transductive (test-time speaker normalisation; not comparable with the table above)", "",
                  "Same configurations with `-o features.test_time_speaker_norm=true`. Each of these rows is "
                  f"*{TRANSDUCTIVE_NOTE}*: a test speaker's features are normalised with statistics of all "
                  "of that speaker's test clips, which a deployed model does not have.", "",
                  "| corpora | system | variant | protocol | UA % | WA % | macro-F1 % | wall s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in transductive:
            lines.append(f"| {'+'.join(r['corpora'])} | {r['system']} | {r['transductive_note']} | "
                         f"{_proto(r['protocol'])} | {pct(r['ua'])} | {pct(r['wa'])} | {pct(r['macro_f1'])} | "
                         f"{r['wall_time_s']:.0f} |")
    skipped = {(s["path"], s["kind"]) for r in rows.values() for s in r.get("skipped", [])}
    lines += ["", "## Notes", ""]
    notes: dict[str, list[str]] = {}
    for r in inductive + transductive:
        if r.get("note"):
            notes.setdefault(r["note"], []).append(f"`{r['name']}`")
    lines += [f"- † {', '.join(names)}: {note}" for note, names in notes.items()]
    low = below_chance(inductive + transductive)
    if low:
        lines.append("- Folds below chance UA: " + "; ".join(low) + ". Without any per-speaker "
                     "normalisation, the raw eGeMAPS / handcrafted features of an unseen voice can fall outside "
                     "what the classifier learnt from a few training speakers (SAVEE has 4 speakers, one per "
                     "test fold; TESS 2).")
    if skipped:
        lines.append("- Inputs skipped (listed in each run's metrics.json): " +
                     "; ".join(f"`{p}` ({k})" for p, k in sorted(skipped)) + ".")
    else:
        lines.append("- No input file was skipped.")
    lines += ["- Reproduce a row: `serkit run configs/bench/<corpus>_egemaps_svm.yaml` (inductive) and add "
              "`-o features.test_time_speaker_norm=true` for the transductive figure.", ""]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
