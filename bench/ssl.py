"""Frozen Whisper encoders (offline weights) + linear probe on the shared corpora.

For each corpus and backbone: extract every hidden layer, mean+std pooled, once (timed: audio
seconds per wall second), then run ``configs/bench/<corpus>_<backbone>.yaml`` with ``serkit run``'s
pipeline. The layer and C are chosen by a speaker-grouped inner grid search on the training folds
only. Writes bench/results/ssl.md (+ ssl.json, the rows it is built from) beside the EmoBox
published figures; run directories go to runs/bench/<corpus>_<backbone>[_<variant>]/.

Variants: ``default`` is the config as shipped (inductive: nothing is fitted on test utterances);
``transductive`` adds ``-o features.test_time_speaker_norm=true`` (every speaker, test speakers
included, is z-normalised with its own statistics: the run uses the test speakers' unlabelled
utterances). Transductive figures are never ranked with inductive ones: the tables show them in a
separate, labelled column and table.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ssl.py [--corpora emodb savee]
        [--backbones whisper_base whisper_tiny] [--extract-only] [--threads 1]
        [--variants default transductive single logreg emobox] [--from-runs]
"""
from __future__ import annotations

import os
import sys

# this file is named like the standard library's ssl module: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from serkit.config import TRANSDUCTIVE_NOTE, load_config  # noqa: E402
from serkit.evaluation.protocol import load_manifest, run_experiment  # noqa: E402
from serkit.features.pipeline import FeaturePipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ["emodb", "savee", "ravdess", "tess", "cremad"]
#: EmoBox intra-corpus UA % (frozen encoders; Ma et al. 2024), shared/benchmarks/README.md
EMOBOX = {
    "ravdess": {"wav2vec2-base": 54.33, "HuBERT-base": 65.43, "WavLM-large": 72.00, "Whisper-large-v3": 75.32},
    "cremad": {"wav2vec2-base": 61.95, "HuBERT-base": 71.13, "WavLM-large": 74.50, "Whisper-large-v3": 76.75},
    "emodb": {"wav2vec2-base": 82.06, "HuBERT-base": 87.73, "WavLM-large": 92.58, "Whisper-large-v3": 91.26},
    "savee": {"wav2vec2-base": 44.89, "HuBERT-base": 58.90, "WavLM-large": 66.74, "Whisper-large-v3": 74.07},
    "tess": {"wav2vec2-base": 97.92, "HuBERT-base": 99.62, "WavLM-large": 99.78, "Whisper-large-v3": 99.96},
}
#: UA targets (%) of the inductive benchmark issue (14), on the folds of each corpus's configs
TARGETS = {"ravdess": 80.0, "savee": 90.0, "emodb": 92.0, "cremad": 78.0, "tess": 75.0}
#: probe variants compared on the cached whisper-tiny.en features (bench/results/ssl_tried.json,
#: "What was tried"): name -> what it is
TRIED = {
    "svm_l2": "SVM (C 10) on layer 2",
    "svm_l3": "SVM (C 10) on layer 3",
    "svm_l4": "SVM (C 10) on layer 4",
    "svm_cat1234": "SVM (C 10) on layers 1+2+3+4 concatenated",
    "lr_cat01234_C0.01": "logistic regression (C 0.01) on layers 0..4 concatenated",
    "pca_cat01234_svm": "layers 0..4 concatenated, PCA (95 % variance), SVM (C 10)",
    "nap_l2_k16": "layer 2, 16 training-speaker directions projected out (NAP), SVM",
    "nap_l2_k4": "layer 2, 4 training-speaker directions projected out (NAP), SVM",
    "nap_l3_k8": "layer 3, 8 training-speaker directions projected out (NAP), SVM",
    "nap_l4_k4": "layer 4, 4 training-speaker directions projected out (NAP), SVM",
    "ens_svm_123": "average of the SVM probes of layers 1, 2, 3",
    "ens_svm_1234": "average of the SVM probes of layers 1, 2, 3, 4",
    "svm_in_l2": "per-utterance norm, SVM on layer 2",
    "svm_in_l3": "per-utterance norm, SVM on layer 3",
    "svm_in_l4": "per-utterance norm, SVM on layer 4",
    "ens_in_123": "per-utterance norm, average of the SVM probes of layers 1, 2, 3",
    "ens_in_234": "per-utterance norm, average of the SVM probes of layers 2, 3, 4",
    "ens_in_1234": "per-utterance norm, average of the SVM probes of layers 1..4",
    "mlp_layers": "head_layers (softmax layer weights + MLP 256, Lightning, configs/default.yaml's settings)",
}
#: variant -> overrides on the corpus config
VARIANTS = {
    "default": [],  # inductive, as shipped
    "transductive": ["features.test_time_speaker_norm=true"],
    # single layers only (the configs' grid also has concatenations and the layer average)
    "single": ["model.grid={layer__layer: %(layers)s, clf__C: [1.0, 10.0]}"],
    "logreg": ["model.params={n_layers: %(L)d, clf: logreg, C: 0.1, tol: 0.001, max_iter: 300}",
               "model.grid.clf__C=[0.01, 0.1]"],
    # the published EmoBox partition as is; for EmoDB / CREMA-D / TESS it shares speakers between
    # train and test, so it has to be declared speaker-dependent (and is labelled so in the table)
    "emobox": ["protocol.kind=emobox", "protocol.n_folds=null", "protocol.speaker_dependent=true"],
    # configs/bench/<corpus>_best.yaml (whisper-tiny.en): the best inductive recipe of issue 14
    "best": [],
}


def config_path(corpus: str, bb: str, v: str) -> Path:
    """The config a variant runs: ``<corpus>_best.yaml`` for ``best``, else ``<corpus>_<bb>.yaml``."""
    return ROOT / "configs" / "bench" / (f"{corpus}_best.yaml" if v == "best" else f"{corpus}_{bb}.yaml")


def run_name(corpus: str, bb: str, v: str) -> str:
    if v == "best":
        return f"{corpus}_best"
    return f"{corpus}_{bb}" + ("" if v == "default" else f"_{v}")


def variant_label(r: dict) -> str:
    """What a table row says about its variant (transductive rows carry TRANSDUCTIVE_NOTE)."""
    if r["transductive"]:
        note = r.get("transductive_note") or TRANSDUCTIVE_NOTE
        return note if r["variant"] == "transductive" else f"{r['variant']}; {note}"
    return f"{r['variant']} (inductive)"


def pct(m: dict) -> str:
    return f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpora", nargs="*", default=CORPORA)
    ap.add_argument("--backbones", nargs="*", default=["whisper_base"])
    ap.add_argument("--variants", nargs="*", default=["default", "transductive"], choices=list(VARIANTS))
    ap.add_argument("--extract-only", action="store_true")
    ap.add_argument("--from-runs", action="store_true",
                    help="only collect existing runs/bench/<name>/metrics.json into the tables")
    ap.add_argument("--skip-existing", action="store_true",
                    help="collect runs that already have runs/bench/<name>/metrics.json instead of rerunning them")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ssl.md"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the backbone and probes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    threads_ov = [f"features.params.num_threads={args.threads}"]

    console = Console()
    results_json = Path(args.out).with_suffix(".json")
    rows: dict = {}  # this process's entries, merged into the file at each save

    def save() -> dict:
        merged = json.loads(results_json.read_text()) if results_json.exists() else {}
        merged.update(rows)
        results_json.write_text(json.dumps(merged, indent=1))
        write(args.out, merged)
        return merged
    t0 = time.time()
    for corpus in args.corpora:
        for bb in args.backbones:
            cfg_path = ROOT / f"configs/bench/{corpus}_{bb}.yaml"
            cfg = load_config(cfg_path, ["report=false"] + threads_ov)
            if args.from_runs:
                for v in args.variants:
                    if v == "best" and bb != "whisper_tiny":
                        continue
                    name = run_name(corpus, bb, v)
                    mj = ROOT / "runs" / "bench" / name / "metrics.json"
                    if mj.exists():
                        run_cfg = load_config(mj.parent / "config.yaml", [])
                        ov = [o % {"L": int(run_cfg.model.params.get("n_layers", 7)),
                                   "layers": list(range(1, int(run_cfg.model.params.get("n_layers", 7))))}
                              for o in VARIANTS[v]]
                        rows[f"{corpus}/{bb}/{v}"] = _row(json.loads(mj.read_text()), corpus, bb, v, ov,
                                                          run_cfg.model)
                save()
                continue
            manifest, _, _ = load_manifest(cfg)
            pipe = FeaturePipeline.from_config(cfg.audio, cfg.features).fit(manifest)
            ext = pipe.extractors[0]
            console.rule(f"{corpus} {bb}: extraction ({len(manifest)} files)")
            te = time.time()
            fs = pipe.transform_manifest(manifest, progress=True, log=console.print)
            wall = time.time() - te
            audio_s = float(manifest["duration"].sum())
            fresh = ext.backbone_calls
            speed = {"files": len(manifest), "fresh": fresh, "audio_s": round(audio_s, 1),
                     "wall_s": round(wall, 1), "backbone_calls": ext.backbone_calls,
                     "skipped": len(fs.skipped)}
            key_x = f"{corpus}/{bb}/extraction"
            known = json.loads(results_json.read_text()) if results_json.exists() else {}
            if ext.backbone_calls > 0.5 * len(manifest):  # a real (not cached) extraction
                # cached files cost ~nothing: scale the audio by the share of files actually encoded
                audio_fresh = audio_s * fresh / len(manifest)
                speed["audio_s_per_wall_s"] = round(audio_fresh / wall, 2)
                if fresh < len(manifest):
                    speed["note"] = (f"approx.: {fresh} of {len(manifest)} files encoded (rest cached), "
                                     f"audio scaled by that share; torch {torch.get_num_threads()} thread(s)")
                else:
                    speed["note"] = f"torch {torch.get_num_threads()} thread(s)"
                rows[key_x] = speed
            elif key_x not in known:
                rows[key_x] = speed
            console.print(speed)
            save()
            if args.extract_only:
                continue
            L = int(cfg.model.params.get("n_layers", 7))
            for v in args.variants:
                if v == "best" and bb != "whisper_tiny":
                    continue
                ov = [o % {"L": L, "layers": list(range(1, L))} for o in VARIANTS[v]]
                name = run_name(corpus, bb, v)
                c = load_config(config_path(corpus, bb, v), ov + [f"name={name}", "report=false"] + threads_ov)
                mj = ROOT / "runs" / "bench" / name / "metrics.json"
                if args.skip_existing and mj.is_file():
                    rows[f"{corpus}/{bb}/{v}"] = _row(json.loads(mj.read_text()), corpus, bb, v, ov, c.model)
                    save()
                    continue
                console.rule(name)
                r = run_experiment(c, ROOT / "runs" / "bench" / name, progress=False, console=console)
                rows[f"{corpus}/{bb}/{v}"] = _row(r.metrics, corpus, bb, v, ov, c.model)
                save()
    save()
    console.print(Path(args.out).read_text())
    console.print(f"total {time.time() - t0:.0f} s")


def _row(m: dict, corpus: str, bb: str, v: str, ov: list[str], model=None) -> dict:
    """One table row; ``fixed_layer`` is the configured layer when no inner grid chose one."""
    fixed = None
    if model is not None and not model.grid:
        fixed = model.params.get("layer", model.params.get("members"))
        if "members" in model.params:
            fixed = _members({"members": str(fixed), "norm": model.params.get("norm", "none")})
    p = m["protocol"]
    transductive = bool(p.get("transductive"))
    if transductive != (v == "transductive"):
        raise ValueError(f"{corpus}/{bb}/{v}: the run says transductive={transductive}")
    skipped = (m.get("accounting") or {}).get("skipped") or []
    return {"corpus": corpus, "backbone": bb, "variant": v, "transductive": transductive,
            "transductive_note": p.get("transductive_note"), "ua": m["ua"], "wa": m["wa"],
            "macro_f1": m["macro_f1"], "wall_time_s": m["wall_time_s"], "protocol": p,
            "overrides": ov, "best_params": [_with_fixed(f.get("best_params"), model) for f in m["folds"]],
            "fixed_layer": fixed,
            "rows_used": (m.get("accounting") or {}).get("rows_used"),
            "skipped": [{"path": s["path"], "kind": s["kind"]} for s in skipped]}


def _with_fixed(bp: dict | None, model) -> dict | None:
    """An ssl_layer_ensemble search's chosen parameters plus the fixed ``norm`` / ``C`` it ran with."""
    if bp is None or model is None or "members" not in bp:
        return bp
    return {**{k: model.params[k] for k in ("norm", "C") if k in model.params}, **bp}


def _proto(p: dict) -> str:
    return f"{p['kind']} ({p['n_folds']} fold{'' if p['n_folds'] == 1 else 's'}, " + \
        ("speaker-independent)" if p["speaker_independent"] else "**speaker-dependent**)")


def _members(bp: dict) -> str:
    """ssl_layer_ensemble parameters as a table cell: ``2`` one layer, ``[1+2+3]`` concatenated,
    ``avg(2,3,4)`` averaged probes; ``·u`` per-utterance norm; ``C1`` where C is 1."""
    import ast

    try:
        members = ast.literal_eval(str(bp.get("members")))
    except (ValueError, SyntaxError):
        members = bp.get("members")

    def one(m) -> str:
        return "[" + "+".join(map(str, m)) + "]" if isinstance(m, list) else str(m)
    cell = one(members[0]) if isinstance(members, list) and len(members) == 1 else \
        "avg(" + ",".join(one(m) for m in members) + ")" if isinstance(members, list) else str(members)
    if bp.get("norm") == "utterance":
        cell += "·u"
    if bp.get("C") is not None and float(bp["C"]) != 10.0:
        cell += f" C{float(bp['C']):g}"
    return cell


def _chosen(r: dict) -> str:
    if r.get("fixed_layer") is not None:
        return f"{r['fixed_layer']} (fixed a priori, no search)"
    return ", ".join(_members(bp) if "members" in (bp or {}) else
                     str((bp or {}).get("layer__layer", "-")).replace(", ", "+") for bp in r["best_params"])


def _order(r: dict) -> tuple:
    c = CORPORA.index(r["corpus"]) if r["corpus"] in CORPORA else 99
    return (c, r["backbone"], r["variant"] != "default", r["variant"])


def write(out: str, rows: dict) -> None:
    """ssl.md: inductive rows (headline, with the transductive UA of the same config in a labelled
    column), the transductive rows in their own table, best inductive config per corpus, speeds."""
    results = {k: r for k, r in rows.items() if not k.endswith("/extraction")}
    inductive = sorted((r for r in results.values() if not r["transductive"]), key=_order)
    transductive = sorted((r for r in results.values() if r["transductive"]), key=_order)
    twin = {(r["corpus"], r["backbone"]): r for r in transductive if r["variant"] == "transductive"}

    def twin_ua(r: dict) -> str:
        t = twin.get((r["corpus"], r["backbone"])) if r["variant"] == "default" else None
        return "–" if t is None else pct(t["ua"])

    lines = ["# Frozen Whisper encoders + linear probe (bench/ssl.py)", "",
             "Every hidden layer of the (offline) Whisper encoder is mean+std pooled over the valid frames "
             "and cached once; a speaker-grouped inner grid search on the training folds picks the layer "
             "and C (the test fold never drives selection). UA = balanced accuracy, WA = accuracy; % mean "
             "± std over outer folds. Wall time on the 2-core CPU machine (shared with other jobs), probe "
             "only (features cached), torch 1 thread. Default probe: RBF SVM (C in {1, 10}); EmoBox "
             "column: published frozen-encoder UA (Ma et al. 2024).", "",
             "## Inductive (headline)", "",
             "Nothing is fitted on test utterances: the probe's StandardScaler is fitted on the training "
             "folds only. The `transductive UA` column is the same configuration run with "
             f"`-o features.test_time_speaker_norm=true` ({TRANSDUCTIVE_NOTE}); it is shown for reference "
             "and never ranked against the inductive figures.", "",
             "| corpus | backbone | variant | protocol | UA % | WA % | macro-F1 % | layers chosen (per fold) | "
             "wall s | transductive UA % (test-time speaker norm; not comparable) | "
             "EmoBox UA % (W2V2-b / HuBERT-b / WavLM-L / Whisper-L-v3) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in inductive:
        pub = " / ".join(f"{v:.1f}" for v in EMOBOX.get(r["corpus"], {}).values())
        lines.append(f"| {r['corpus']} | {r['backbone']} | {variant_label(r)} | {_proto(r['protocol'])} | "
                     f"{pct(r['ua'])} | {pct(r['wa'])} | {pct(r['macro_f1'])} | {_chosen(r)} | "
                     f"{r['wall_time_s']:.0f} | {twin_ua(r)} | {pub} |")
    if transductive:
        lines += ["", "## Transductive (test-time speaker normalisation; not comparable with the table above)", "",
                  "The same configurations with `-o features.test_time_speaker_norm=true`: each speaker's "
                  "features, the test speakers' included, are z-normalised with that speaker's own statistics "
                  "before the probe. Every row here is "
                  f"*{TRANSDUCTIVE_NOTE}*; a deployed model never has those statistics.", "",
                  "| corpus | backbone | variant | protocol | UA % | WA % | macro-F1 % | layers chosen (per fold) | wall s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in transductive:
            lines.append(f"| {r['corpus']} | {r['backbone']} | {variant_label(r)} | {_proto(r['protocol'])} | "
                         f"{pct(r['ua'])} | {pct(r['wa'])} | {pct(r['macro_f1'])} | {_chosen(r)} | "
                         f"{r['wall_time_s']:.0f} |")
    lines += ["", "## Best inductive configuration per corpus against the targets", "",
              "The best inductive row per corpus among the shipped configs (`default`) and "
              "`configs/bench/<corpus>_best.yaml` (`best`); each reproduces with `serkit run <config>`. "
              "Transductive runs are not candidates. Targets: issue 14 (UA, inductive, on the folds of each "
              "config); the last column is EmoBox's best published frozen-encoder UA (other folds for "
              "EmoDB / CREMA-D / TESS, see the notes).", "",
              "| corpus | best inductive UA % | config | shipped whisper-tiny UA % | target UA % | met | "
              "EmoBox best UA % |",
              "|---|---|---|---|---|---|---|"]
    for corpus in CORPORA:
        cand = [r for r in inductive if r["corpus"] == corpus and r["variant"] in ("default", "best")]
        if not cand:
            continue
        best = max(cand, key=lambda r: r["ua"]["mean"])
        tgt = TARGETS.get(corpus)
        met = "–" if tgt is None else ("yes" if 100 * best["ua"]["mean"] >= tgt else "**no**")
        cfg = f"{corpus}_best" if best["variant"] == "best" else f"{corpus}_{best['backbone']}"
        base = [r for r in inductive if r["corpus"] == corpus and r["variant"] == "default"
                and r["backbone"] == "whisper_tiny"]
        lines.append(f"| {corpus} | {pct(best['ua'])} | `configs/bench/{cfg}.yaml` | "
                     f"{pct(base[0]['ua']) if base else '–'} | {'–' if tgt is None else f'≥ {tgt:.0f}'} | "
                     f"{met} | {max(EMOBOX.get(corpus, {0: 0}).values()):.1f} |")
    tried_path = Path(out).with_name("ssl_tried.json")
    if tried_path.exists():
        tried = json.loads(tried_path.read_text())
        corpora = [c for c in CORPORA if c in tried]
        lines += ["", "## What was tried (issue 14; whisper-tiny.en features)", "",
                  "Probe variants on the cached all-layer features, each on the outer folds of the corpus's "
                  "configs and, where the training folds hold several speakers, by a 3-fold speaker-grouped "
                  "inner CV inside each outer training part. Cell: outer UA % mean over folds (inner-CV UA % "
                  "mean over the outer folds' training parts; – where not run or impossible: TESS has one "
                  "training speaker). Decisions use the inner figures only: per corpus, the grid of "
                  "`<corpus>_best.yaml` (EmoDB, SAVEE, RAVDESS) chooses per outer fold; for TESS and "
                  "CREMA-D the variant with the best mean inner UA over EmoDB, SAVEE and RAVDESS (last column; "
                  "among the variants measured on all three) was fixed a priori (`ens_in_234`). The outer figures of variants that were not shipped are shown "
                  "for the record, never used to choose. Prototype runs (scikit-learn pipelines on the same "
                  "features, SVM probability argmax as `serkit run` scores it); the SVM variants correspond to "
                  "`ssl_layer_ensemble` with `members` / `norm` as named (`-o model.grid=null -o "
                  "model.params.members=[2,3,4] -o model.params.norm=utterance` on a `_best` config).", "",
                  "| variant | what | " + " | ".join(corpora) + " | mean inner UA % (emodb, savee, ravdess) |",
                  "|---|---|" + "---|" * (len(corpora) + 1)]
        for name, what in TRIED.items():
            cells = []
            for c in corpora:
                e = tried[c].get(name)
                if e is None:
                    cells.append("–")
                    continue
                inner = f"{100 * sum(e['inner']) / len(e['inner']):.1f}" if e.get("inner") else "–"
                cells.append(f"{100 * sum(e['outer']) / len(e['outer']):.1f} ({inner})")
            inner3 = [tried.get(c, {}).get(name, {}).get("inner") for c in ("emodb", "savee", "ravdess")]
            mean3 = f"{100 * sum(sum(i) / len(i) for i in inner3) / 3:.1f}" if all(inner3) else "–"
            if any(x != "–" for x in cells):
                lines.append(f"| `{name}` | {what} | " + " | ".join(cells) + f" | {mean3} |")
    lines += ["", "## Extraction speed (all layers, one file at a time, CPU; shared machine, so indicative only)", "",
              "| corpus | backbone | files | audio s | wall s | audio s / wall s | note |",
              "|---|---|---|---|---|---|---|"]
    for k, r in rows.items():
        if k.endswith("/extraction"):
            corpus, bb, _ = k.split("/")
            lines.append(f"| {corpus} | {bb} | {r['files']} | {r['audio_s']} | {r['wall_s']} | "
                         f"{r.get('audio_s_per_wall_s', 'cached')} | {r.get('note', '')} |")
    skipped: dict[tuple[str, str], set[str]] = {}
    for r in results.values():
        for sk in r.get("skipped", []):
            skipped.setdefault((sk["path"], sk["kind"]), set()).add(r["backbone"])
    used: dict[str, dict[int, set[str]]] = {}  # corpus -> rows used -> backbones
    for r in results.values():
        if r.get("rows_used") is not None:
            used.setdefault(r["corpus"], {}).setdefault(r["rows_used"], set()).add(r["backbone"])
    uneven = [f"{c}: " + ", ".join(f"{n} rows ({', '.join(sorted(b))})" for n, b in sorted(u.items()))
              for c, u in used.items() if len(u) > 1]
    lines += ["", "## Notes", "",
              "- Variants: `default` = `configs/bench/<corpus>_<backbone>.yaml` as shipped (inductive): the "
              "layer(s) are chosen among single layers 1..L-1, the concatenations of layers 1-3, 2-4 and "
              "1..L-1, and the layer average, with C in {1, 10}, by a 3-fold speaker-grouped inner CV on the "
              "training folds; `transductive` = the same with `-o features.test_time_speaker_norm=true` "
              f"({TRANSDUCTIVE_NOTE}); `single` restricts the grid to single layers; `logreg` swaps the RBF "
              "SVM for logistic regression; `emobox` runs the published EmoBox partition as is, declared "
              "speaker-dependent where it shares speakers (EmoDB, CREMA-D); `best` = "
              "`configs/bench/<corpus>_best.yaml` (whisper-tiny.en, model `ssl_layer_ensemble`; its header "
              "says what it chooses and why). In its `layers chosen` cell, `2` is one layer's probe, `[1+2+3]` "
              "the concatenation, `avg(2,3,4)` the averaged probes of those layers, `·u` per-utterance "
              "normalisation, `C1` C = 1 (else 10).",
              "- Issue 14 (2026-12-02, fresh feature caches): the whisper-tiny `default` rows of EmoDB, SAVEE, "
              "RAVDESS and TESS were rerun and reproduced (88.7, 85.6, 69.9, 67.1); CREMA-D's was not rerun "
              "in full (CPU), its fold 1 gave 71.4. `best` against `default` (whisper-tiny) on the same "
              "folds, UA points: EmoDB +2.7, +1.8, +1.2, +1.0, +0.7; SAVEE +1.0, +0.5, 0, 0; RAVDESS +1.6, "
              "+4.3, +1.2, +2.0, +2.0, -1.2; TESS +0.9, +3.0; CREMA-D fold 1 +3.3. No target of issue 14 is "
              "met: the remaining gaps (2-9 points) look beyond probe changes on whisper-tiny features.",
              "- Wall times of the `best` rows were measured with 4-6 jobs sharing the 2-core machine (about a "
              "quarter of a core each), so they are several times the unloaded cost; an `ssl_layer_ensemble` of "
              "k members costs about k single probes.",
              "- Per-utterance normalisation (`norm: utterance` of `ssl_probe` / `ssl_layer_ensemble`): each "
              "layer's pooled mean+std block of one clip is z-normalised across its own features (that "
              "clip alone: inductive, works on a single new recording). It removes each clip's overall "
              "offset and scale of the hidden states; it is not the transductive per-speaker normalisation. "
              "The prototypes of the `What was tried` table normalised the mean and std halves separately, "
              "except `svm_in_l2` / `svm_in_l4` on EmoDB and SAVEE (whole block, as shipped); on EmoDB "
              "/ SAVEE layers 2 and 4 the two differ by less than 0.6 UA points.",
              "- Not tried for lack of CPU time on the shared 2-core machine: eGeMAPS + Whisper fusion, "
              "whisper-base + tiny concatenation (whisper-base CREMA-D extraction alone took 32 min), "
              "frame-level per-utterance normalisation before pooling (it needs a frame-level extraction; "
              "the Whisper log-mel front end already normalises each clip's level). The `head_layers` MLP "
              "(`mlp_layers`) was tried on EmoDB only (83.3 vs 89.2 for the layer-2 SVM) and dropped.",
              "- " + ("Inputs skipped (listed in each run's metrics.json): " +
                      "; ".join(f"`{p}` ({k}; {', '.join(sorted(b))} runs)" for (p, k), b in sorted(skipped.items()))
                      + "." if skipped else "No input file was skipped in these runs."),
              *([("- Runs of one corpus that used different numbers of utterances: " + "; ".join(uneven) +
                  ". Features served from the feature cache are not re-checked for silence / length "
                  "(serkit.features.extract), so a clip whose features were cached by an earlier session is "
                  "still used where a fresh extraction skips it.")]
                if uneven else []),
              "- RAVDESS (1200 training files per fold) is too slow for that grid on this machine: its configs "
              "search single layers only (whisper-tiny: C in {1, 10}; whisper-base: C fixed to 10).",
              "- Extraction: with torch at 2 threads on the loaded 2-core machine the threads oversubscribe; "
              "1 thread was 3-4x faster (`SSLFeatures(num_threads=1)`).",
              "- Layers: 0 = the Whisper encoder's input embedding (conv stem + positions), L-1 = last layer "
              "(after the final LayerNorm). For emotion, the inner CV mostly picks early-middle layers.",
              "- TESS (`loso`) has one training speaker per fold, so no speaker-grouped inner CV is possible: "
              "its config fixes the layer (not chosen on TESS).",
              "- EmoBox figures come from much larger frozen encoders (Whisper large-v3: 32 layers, 1.5 B "
              "parameters) on the EmoBox folds, and EmoBox does not normalise per test speaker; EmoBox's EmoDB "
              "folds are speaker-dependent, serkit's `default` EmoDB rows are speaker-independent "
              "(group_kfold), so that comparison favours EmoBox. The `emobox` variant runs the published "
              "partitions themselves (`serkit run configs/bench/<corpus>_whisper_tiny.yaml -o "
              "protocol.kind=emobox -o protocol.n_folds=null -o protocol.speaker_dependent=true`).",
              "- TESS: EmoBox's TESS split (2100 / 700) puts both speakers in train and test, so its ~98-100 % "
              "are speaker-dependent; serkit's TESS row trains on one speaker and tests on the other, a much "
              "harder task (the two speakers differ in age).",
              "- CREMA-D: the EmoBox CREMA-D partition shares all 91 actors between train and test (see the "
              "top-level README), so serkit's row uses 5 folds grouped by actor. Its configs fix the layer "
              "(layer 2, the one most often chosen by the inner searches on RAVDESS / SAVEE / EmoDB) and "
              "C = 10 a priori, to keep the CPU cost down; nothing is tuned on CREMA-D. `cremad_best.yaml` "
              "and `tess_best.yaml` likewise fix their recipe a priori (`ens_in_234`, from the inner CV of "
              "the other corpora).",
              "- Fine-tuning: no GPU machine was lent to this task, so whisper-base was not fine-tuned on "
              "RAVDESS (`configs/bench/ravdess_whisper_base_finetune.yaml` is the run to make on one). On the "
              "CPU, `serkit run configs/bench/emodb_whisper_tiny_finetune_cpu.yaml -o protocol.max_folds=1` "
              "(whisper-tiny.en, last 2 layers at lr 5e-5, attention pooling + MLP head at 1e-3, 10 epochs, "
              "1 thread, 394 s) reached UA 80.1 on EmoDB fold 1 (test speakers 03, 14), where the frozen "
              "encoder + SVM of `emodb_whisper_tiny` got 94.8 on the same fold (measured with the earlier, "
              "transductive configs): with 417 training clips and a 4 s crop, fine-tuning overfits (train "
              "accuracy 100 %, validation 74-79 %).",
              "- Reproduce a row: `serkit run configs/bench/<corpus>_<backbone>.yaml` (features are cached "
              "under $SERKIT_CACHE; the backbone runs once per file for all layers); add "
              "`-o features.test_time_speaker_norm=true` for the transductive row.", ""]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
