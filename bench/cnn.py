"""Spectrogram / feature networks of studies 000–003: published protocol vs speaker-independent.

Runs the configs in configs/seeds/ (one per network and protocol) through serkit's run loop, one run
directory per row under runs/bench/cnn/ (gitignored), and (re)writes bench/results/cnn.md after every
run from all run directories found there, so rows accumulate across invocations. A row whose run
directory already has a metrics.json is reused, not rerun (``--force`` reruns it from scratch); an
interrupted run resumes from its folds' checkpoints.

CPU is the constraint (2 cores): ``--max-folds`` and ``--max-epochs`` cap a run, and such rows are
labelled in the table ("1 of 6 folds", "epochs capped at N"). Examples:

    .venv/bin/python bench/cnn.py --networks cnn4 --protocols speaker_independent      # the full 6-fold run
    .venv/bin/python bench/cnn.py --max-folds 1 --max-epochs 5                          # one fold of everything
    .venv/bin/python bench/cnn.py --networks mlp cnn_mlp --protocols published
    .venv/bin/python bench/cnn.py --collect                                             # table only
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

# bench/ssl.py would shadow the standard library's ``ssl`` (imported by torch) when this script's
# folder is first on sys.path: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "configs" / "seeds"
RUNS = ROOT / "runs" / "bench" / "cnn"

#: network key -> (study, label, published-protocol config stem, speaker-independent config stems)
NETWORKS: dict[str, tuple[str, str, str, list[str]]] = {
    "cnn4": ("001", "CNN-4, mel 128×128", "seed1_cnn4_random", ["seed1_cnn4_speaker_independent"]),
    "cnn3": ("001", "CNN-3, mel 128×128", "seed1_cnn3_random", ["seed1_cnn3_speaker_independent"]),
    "cnn5": ("001", "CNN-5, mel 128×128", "seed1_cnn5_random", ["seed1_cnn5_speaker_independent"]),
    "cnn4_augment": ("001", "CNN-4 + time/freq mask + noise", "seed1_cnn4_augment_random",
                     ["seed1_cnn4_augment_speaker_independent"]),
    "cnn3_pretrain": ("001", "CNN-3 + conv-AE pretraining", "seed1_cnn3_pretrain_random",
                      ["seed1_cnn3_pretrain_speaker_independent"]),
    "mlp": ("001", "MLP 256-128-64, handcrafted + metadata", "seed1_mlp_random",
            ["seed1_mlp_speaker_independent"]),
    "cnn_mlp": ("001", "CNN + MLP hybrid (MFCC + handcrafted)", "seed1_cnn_mlp_random",
                ["seed1_cnn_mlp_speaker_independent"]),
    "alexnet": ("002", "AlexNet, log-mel 256/128", "seed2_alexnet_ravdess",
                ["seed2_alexnet_speaker_independent"]),
    "alexnet_cremad": ("002", "AlexNet, log-mel 256/128 (CREMA-D)", "seed2_alexnet_cremad", []),
    "mfcc_cnn_003": ("003", "MFCC1 CNN, 41×216", "seed3_mfcc_cnn_random",
                     ["seed3_mfcc_cnn_speaker_independent"]),
    "mfcc_crnn_003": ("003", "MFCC2 CNN+BiLSTM+attention", "seed3_mfcc_crnn_random",
                      ["seed3_mfcc_crnn_speaker_independent"]),
    "logmel_cnn_003": ("003", "MS CNN, log-mel 128×126", "seed3_logmel_cnn_random",
                       ["seed3_logmel_cnn_speaker_independent"]),
    "cnn1d_mfcc": ("003", "1-D CNN baseline, MFCC 13×216", "seed3_cnn1d_mfcc_random",
                   ["seed3_cnn1d_mfcc_speaker_independent"]),
    "mfcc_cnn_000": ("000", "MFCC CNN baseline, 40×157", "seed0_mfcc_cnn_random",
                     ["seed0_mfcc_cnn_speaker_independent"]),
}
PROTOCOLS = ("published", "speaker_independent")

NOTES = """## Reading the table

* **Published protocols of studies 000, 001 and 003 are speaker-dependent random splits**: the same
  actors are in train and test, so a network can partly recognise the speaker and their recording
  session instead of the emotion. Their speaker-independent twins hold out whole actors (EmoBox RAVDESS
  folds: 4 of 24 actors per fold; speaker-grouped 5-fold CV on the four-corpus merge). The gap between
  the two rows of a network is the speaker leakage of the published figure.
* Study 002 is speaker-independent as published (8:1:1 by speaker: RAVDESS 16/4/4 actors, 6 rotations;
  CREMA-D 71/10/10, 10 rotations); its validation actors drive early stopping. Its figure is a
  macro-F1 — compare it with the macro-F1 column.
* Study 003 reports *validation* accuracy on its random split, with early stopping on that same
  split (test leakage on top of speaker leakage); serkit early-stops on a separate part of the
  training data and reports the untouched test part.
* Partial rows (k of n folds, capped epochs, subsampled data) exist because the development machine
  has 2 CPU cores; they show that each configuration runs end to end and give a first estimate, not
  the full protocol. Rerun without caps on a GPU: `.venv/bin/python bench/cnn.py` (each row's run
  directory has config.yaml to reproduce it).
* Study 003's rows train on the whole 11,970-clip four-corpus merge (RAVDESS without calm, TESS,
  SAVEE, CREMA-D; 7 classes) with `--precision bf16-mixed`: bfloat16 autocast, which this CPU
  (AVX512-BF16) runs about twice as fast as float32. Measured at one thread on a batch of 32 (forward
  + backward): MFCC1 CNN 193 vs 356 ms, CRNN 207 vs 382 ms, MS CNN 391 vs 766 ms, 1-D CNN 109 vs 172 ms.
  They supersede the previous session's 700-clip, 3-epoch trials (the table shows the least capped run
  of each config). bf16 did not move the score where both ran: the 1-D CNN's published split gives UA 61.9 in
  float32 and 62.1 in bf16-mixed (both rows are shown). Still partial for lack of CPU time: the
  speaker-independent CRNN (2 of 5 folds), 1-D CNN (3 of 5) and MS CNN (1 of 5; about 3 min per epoch
  at one thread). On the folds that ran, the CRNN is 9 UA points above the MFCC1 CNN (62.8 / 55.4 vs
  53.9 / 44.8 on folds 1 / 2), the MS CNN 0.8 above it on fold 1 (54.7 vs 53.9).
* Study 003's random-split accuracies (WA) land near its validation accuracies: MFCC1 CNN 65.1 vs
  70.16, CRNN 67.6 vs 66.95, MS CNN 68.0 vs 68.39. Speaker-independently each loses 10-21 UA points:
  MFCC1 CNN 66.6 → 50.5 ± 5.2 (all 5 folds), CRNN 68.7 → 59.1 (2 folds), MS CNN 70.4 → 54.7 (1 fold),
  1-D CNN 62.1 → 41.1 (3 folds).
* The 1-D CNN baseline puts dropout after the BatchNorm of every block. Its BatchNorm running
  statistics, gathered with dropout on, did not match evaluation: on the merge its eval-mode logits
  blew up (validation loss 25-66 while the training loss fell to 1.0), early stopping kept epoch 2 and
  the test UA was 20.2. Its configs now set `bn_recalibration: 100` (BatchNorm statistics re-estimated
  on 100 training batches with dropout off before each validation and after training), and the
  same run gives validation loss 1.05 and UA 62.1.
* Wall times: CNN-4 speaker-independent ran alone at 2 torch threads on the otherwise idle machine;
  the other full RAVDESS rows of the previous session ran as two 1-thread jobs side by side, the
  bf16-mixed rows as two or three 1-thread jobs side by side. Capped rows from the earliest session
  shared the CPU with 3-5 other jobs.
"""


def run_name(stem: str, max_folds: int | None, max_epochs: int | None,
             pretrain_epochs: int | None = None, max_per_label: int | None = None,
             precision: str | None = None) -> str:
    name = stem
    if max_per_label:
        name += f"__n{max_per_label}"
    if max_folds:
        name += f"__f{max_folds}"
    if max_epochs:
        name += f"__e{max_epochs}"
    if pretrain_epochs:
        name += f"__pe{pretrain_epochs}"
    if precision and precision.startswith("bf16"):
        name += "__bf16"
    return name


def overrides_for(cfg_data: dict, max_folds: int | None, max_epochs: int | None,
                  pretrain_epochs: int | None, max_per_label: int | None = None,
                  precision: str | None = None) -> list[str]:
    out = ["report=false", "model.params.progress_bar=false"]
    if precision:
        out.append(f"model.params.precision={precision}")
    if max_per_label:
        out.append(f"data.max_per_label={max_per_label}")
    if max_folds:
        out.append(f"protocol.max_folds={max_folds}")
    params = (cfg_data.get("model") or {}).get("params") or {}
    if max_epochs and max_epochs < int(params.get("max_epochs", 50)):
        out.append(f"model.params.max_epochs={max_epochs}")
    if pretrain_epochs and params.get("pretrain"):
        out.append(f"model.params.pretrain.epochs={pretrain_epochs}")
    return out


def total_folds(cfg) -> int:
    """How many folds the config's full protocol has."""
    p = cfg.protocol
    if p.kind == "random":
        return 1
    if p.kind == "emobox":
        table = pd.read_csv(p.folds_csv, dtype=str)
        corpus = p.emobox_corpus or cfg.data.corpora[0].name
        return int(table.loc[table["corpus"] == corpus, "fold"].nunique())
    if p.kind == "loso":
        return 0  # one per speaker; unknown without the manifest
    return p.n_folds


# ------------------------------------------------------------------------------------------- table
def pct(m: dict) -> str:
    return f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}"


def epochs_of(run_dir: Path) -> tuple[list[int], list[int]]:
    """Epochs run and best epoch (lowest val_loss, 1-based) per fold, from folds/*/history.csv."""
    runs, best = [], []
    for h in sorted(run_dir.glob("folds/*/history.csv")):
        df = pd.read_csv(h)
        if df.empty:
            continue
        runs.append(len(df))
        if "val_loss" in df and df["val_loss"].notna().any():
            best.append(int(df["val_loss"].idxmin()) + 1)
    return runs, best


def describe(run_dir: Path) -> dict | None:
    from serkit.config import load_config

    mpath = run_dir / "metrics.json"
    if not mpath.is_file():
        return None
    m = json.loads(mpath.read_text())
    cfg = load_config(run_dir / "config.yaml")
    full = total_folds(cfg)
    ran = m["protocol"]["n_folds"]
    notes = []
    if full and ran < full:
        notes.append(f"**{ran} of {full} folds**")
    meta = {}
    if (run_dir / "bench.json").is_file():
        meta = json.loads((run_dir / "bench.json").read_text())
    if meta.get("max_epochs_cap"):
        notes.append(f"**epochs capped at {meta['max_epochs_cap']}** (config: {meta['config_max_epochs']})")
    if meta.get("max_per_label"):
        notes.append(f"**subsampled to {meta['max_per_label']} utterances per class** "
                     f"({m['n_utterances']} in all)")
    if meta.get("pretrain_epochs_cap"):
        notes.append(f"**AE pretraining capped at {meta['pretrain_epochs_cap']} epochs/layer** (paper: 50)")
    if meta.get("note"):
        notes.append(str(meta["note"]))
    ep, best = epochs_of(run_dir)
    params = cfg.model.params
    ep_s = ("/".join(map(str, ep)) if ep else "–") + f" (max {params.get('max_epochs', 50)}, " \
        f"patience {params.get('patience', 10)})"
    if best:
        ep_s += f"; best {'/'.join(map(str, best))}"
    p = m["protocol"]
    proto = f"{p['kind']}, " + ("speaker-independent" if p["speaker_independent"] else
                                "**speaker-dependent**")
    pub = m.get("published")
    pub_s = f"{pub['value']:.2f} ({pub['metric']}; {pub['protocol']})" if pub else ""
    return {"name": run_dir.name, "corpora": "+".join(m["corpora"]), "proto": proto,
            "ua": pct(m["ua"]), "wa": pct(m["wa"]), "f1": pct(m["macro_f1"]), "pub": pub_s,
            "wall": m["wall_time_s"], "epochs": ep_s, "notes": "; ".join(notes) or "full run",
            "model": m["model"], "folds_ran": ran, "folds_full": full, "threads": meta.get("threads"),
            "precision": next((f.get("precision_mode") for f in m.get("folds", []) if f.get("precision_mode")), None)}


def write_table(out: Path) -> str:
    index = {stem: (key, study, label) for key, (study, label, pub, si) in NETWORKS.items()
             for stem in [pub, *si]}
    rows = []

    def caps(name: str) -> tuple[str, tuple[float, ...]]:
        """(stem, (utterances per class, folds, epochs, pretrain epochs) with inf for no cap) of a run
        name; "bf16" (mixed precision) is not a cap: such a run competes with its float32 twin."""
        parts = name.split("__")
        cap = {"n": math.inf, "f": math.inf, "e": math.inf, "pe": math.inf}
        key = [parts[0]]
        for part in parts[1:]:
            tag = part.rstrip("0123456789")
            if tag in cap and part[len(tag):]:
                cap[tag] = int(part[len(tag):])
            elif part != "bf16":
                key.append(part)
        return "__".join(key), (cap["n"], cap["f"], cap["e"], cap["pe"])

    # of several runs of one config, the table shows the least capped (a rerun supersedes a trial);
    # equally capped runs (a float32 and a bf16-mixed twin) are all shown
    done = [p for p in RUNS.glob("*") if p.is_dir() and (p / "metrics.json").is_file()]
    best: dict[str, tuple[tuple[float, ...], list[str]]] = {}
    for p in done:
        key, cap = caps(p.name)
        if key not in best or cap > best[key][0]:
            best[key] = (cap, [p.name])
        elif cap == best[key][0]:
            best[key][1].append(p.name)
    shown = {name for _, names in best.values() for name in names}
    for run_dir in sorted(done):
        if run_dir.name not in shown:
            continue
        stem = run_dir.name.split("__")[0]
        d = describe(run_dir)
        if d is None:
            continue
        key, study, label = index.get(stem, (d["model"], "?", d["model"]))
        how = [f"{d['threads']} thr"] if d["threads"] else []
        if d["precision"] and d["precision"] != "32-true":
            how.append(d["precision"])
        wall = f"{d['wall']:.0f}" + (f" ({', '.join(how)})" if how else "")
        order = (list(NETWORKS).index(key) if key in NETWORKS else 99,
                 0 if "speaker_independent" not in stem else 1, run_dir.name)
        rows.append((order, f"| {study} | {label} | {d['corpora']} | {d['proto']} | {d['notes']} | "
                            f"{d['ua']} | {d['wa']} | {d['f1']} | {d['pub']} | {wall} | "
                            f"{d['epochs']} | `{d['name']}` |"))
    rows.sort()
    head = [
        "# Spectrogram and feature networks of studies 000–003 (bench/cnn.py)",
        "",
        "Each network under its **published protocol** (several are speaker-dependent random splits, "
        "labelled as such) and a **speaker-independent** twin (EmoBox RAVDESS folds; speaker-grouped "
        "5-fold CV for study 003's four-corpus merge). UA = unweighted accuracy (balanced), WA = "
        "accuracy, macro-F1; % mean ± std over the folds that ran (population std; a single fold has "
        "std 0). The published figure is the paper's (its metric and protocol in brackets) — compare "
        "it with WA when it is an accuracy, with macro-F1 when it is an F1. Wall time: seconds on the "
        "2-core CPU of the development machine, torch threads in brackets (see the notes for what ran "
        "beside it) and bf16-mixed where training ran under bfloat16 autocast, feature extraction "
        "included unless cached. Epochs: epochs run per fold (early stopping), then the best (lowest "
        "validation loss) epoch per fold, whose weights are used for testing. Rows marked "
        "**k of n folds** or **epochs capped** are partial runs, not the full protocol.",
        "",
        "| study | network | corpora | protocol | run | UA % | WA % | macro-F1 % | published % | "
        "wall s (torch threads) | epochs | run dir (runs/bench/cnn/) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    text = "\n".join(head + [r for _, r in rows]) + "\n"
    text += "\n" + NOTES
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


# --------------------------------------------------------------------------------------------- run
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", nargs="*", default=list(NETWORKS), choices=list(NETWORKS))
    ap.add_argument("--protocols", nargs="*", default=list(PROTOCOLS), choices=PROTOCOLS)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    ap.add_argument("--max-epochs", type=int, default=None, help="cap model.params.max_epochs")
    ap.add_argument("--pretrain-epochs", type=int, default=None,
                    help="cap the autoencoder pretraining epochs per layer (cnn3_pretrain)")
    ap.add_argument("--max-per-label", type=int, default=None,
                    help="seeded subsample per class (data.max_per_label) for quick runs")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--precision", default=None, choices=["32-true", "bf16-mixed"],
                    help="training precision; bf16-mixed runs about twice as fast on a CPU with native "
                         "bfloat16 (run name gets __bf16)")
    ap.add_argument("--force", action="store_true",
                    help="rerun rows from scratch (deletes their run dir, checkpoints included)")
    ap.add_argument("--collect", action="store_true", help="only rebuild the table")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cnn.md"))
    args = ap.parse_args()
    out = Path(args.out)
    if args.collect:
        print(write_table(out))
        return

    import yaml
    from rich.console import Console

    from serkit.config import load_config
    from serkit.evaluation.protocol import run_experiment

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    console = Console()
    jobs = []
    for key in args.networks:
        study, label, pub, si = NETWORKS[key]
        if "published" in args.protocols:
            jobs.append(pub)
        if "speaker_independent" in args.protocols:
            jobs.extend(si)
    t0 = time.time()
    for stem in jobs:
        path = SEEDS / f"{stem}.yaml"
        raw = yaml.safe_load(path.read_text())
        params = (raw.get("model") or {}).get("params") or {}
        cap = args.max_epochs if args.max_epochs and args.max_epochs < int(params.get("max_epochs", 50)) else None
        pcap = args.pretrain_epochs if args.pretrain_epochs and params.get("pretrain") else None
        folds = args.max_folds
        name = run_name(stem, folds, cap, pcap, args.max_per_label, args.precision)
        run_dir = RUNS / name
        if (run_dir / "metrics.json").is_file() and not args.force:
            console.print(f"[dim]{name}: reusing {run_dir}[/]")
            continue
        cfg = load_config(path, overrides_for(raw, folds, cap, pcap, args.max_per_label, args.precision)
                          + [f"name={name}"])
        console.rule(name)
        if args.force and run_dir.exists():
            # a forced rerun starts from scratch: without this the folds' last.ckpt would be resumed
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "bench.json").write_text(json.dumps({
            "config": str(path.relative_to(ROOT)), "max_folds": folds, "max_epochs_cap": cap,
            "config_max_epochs": params.get("max_epochs", 50), "pretrain_epochs_cap": pcap,
            "max_per_label": args.max_per_label,
            "precision": args.precision, "threads": args.threads or os.environ.get("OMP_NUM_THREADS"),
            "started": time.ctime()}))
        try:
            run_experiment(cfg, run_dir, progress=False, console=console)
        except Exception as exc:  # keep going: one failing network must not stop the bench
            console.print(f"[red]{name} failed:[/] {type(exc).__name__}: {exc}")
            (run_dir / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        write_table(out)
    text = write_table(out)
    console.print(text)
    console.print(f"bench/cnn.py: {len(jobs)} job(s) in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
