"""``serkit train``: evaluate a recipe, refit it on all the data, write a model directory.

1. The configured evaluation (``serkit run``'s protocol) and every ``card_evaluations`` entry run
   first, each into its own run directory (skipped with ``evaluate=False``).
2. The whole pipeline (feature pipeline + model, hyper-parameters selected by the model's own
   speaker-grouped inner search on the training data) is refitted on every usable utterance.
3. The model directory gets the fitted pipeline and model, pickle-free, and a card: training data
   (corpora, utterances, speakers per class), the evaluations, the backbone checksum and the
   licence terms the training corpora impose.

A transductive recipe (``features.test_time_speaker_norm``) is refused before anything runs: its
model would need the unlabelled utterances of each new speaker, which a recogniser never has.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from serkit.config import TRANSDUCTIVE_NOTE, RunConfig, apply_overrides
from serkit.corpora import licence_of
from serkit.evaluation.augment import augment_features, describe, with_copies
from serkit.evaluation.estimators import build_estimator, fit_calibrated, preflight
from serkit.evaluation.metrics import headline
from serkit.evaluation.protocol import (check_config, load_manifest, protocol_folds, run_experiment,
                                       seed_everything)
from serkit.features.pipeline import NotPortableError
from serkit.inference.modelcard import render_card
from serkit.inference.modeldir import save_model_dir

__all__ = ["TrainResult", "train_model", "evaluation_summary"]


@dataclass
class TrainResult:
    model_dir: Path
    card: dict[str, Any]
    run_dirs: list[Path] = field(default_factory=list)


def _variant(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    data = cfg.model_dump(mode="json")
    data["card_evaluations"] = []
    return RunConfig.model_validate(apply_overrides(data, list(overrides)))


def evaluation_summary(name: str, description: str, metrics: dict, run_dir: Path) -> dict[str, Any]:
    """The card's record of one evaluation run (headline metrics, per-class recall, per corpus)."""
    pred = pd.read_csv(run_dir / "predictions.csv", dtype={"speaker": str})
    per_corpus = {}
    corpus = pred["key"].str.split("/", n=1).str[0]
    for c, part in pred.groupby(corpus):
        per_corpus[str(c)] = round(headline(part["true"], part["pred"])["ua"], 4)
    folds = [{"fold": f["fold"], "ua": round(f["ua"], 4), "n_test": f["n_test"],
              **({"heldout_corpus": f["heldout_corpus"]} if "heldout_corpus" in f else {}),
              **({"missing_classes": f["missing_classes"]} if f.get("missing_classes") else {})}
             for f in metrics["folds"]]
    return {"name": name, "description": description, "protocol": metrics["protocol"],
            "label_set": metrics["label_set"], "classes": metrics["classes"],
            "ua": metrics["ua"], "wa": metrics["wa"], "macro_f1": metrics["macro_f1"],
            **{k: metrics[k] for k in ("ece", "ece_uncalibrated", "temperature") if k in metrics},
            "per_class_recall": {c: round(v["recall"], 4) for c, v in metrics["per_class"].items()},
            "per_corpus_ua": per_corpus, "folds": folds}


def _training_data(manifest: pd.DataFrame, skipped: int) -> dict[str, Any]:
    corpora = {}
    for c, part in manifest.groupby("corpus"):
        corpora[str(c)] = {"utterances": int(len(part)), "speakers": int(part["speaker"].nunique()),
                           "licence": licence_of(str(c))}
    per_class = {str(lab): {"utterances": int(len(part)), "speakers": int(part["speaker"].nunique()),
                            "corpora": sorted(part["corpus"].astype(str).unique())}
                 for lab, part in manifest.groupby("label")}
    hours = float(pd.to_numeric(manifest["duration"], errors="coerce").sum()) / 3600
    return {"utterances": int(len(manifest)), "speakers": int(manifest["speaker"].nunique()),
            "hours": round(hours, 2), "corpora": corpora, "per_class": per_class,
            "skipped_inputs": skipped,
            # who the model heard: `serkit robustness` warns when it is evaluated on them
            "speaker_ids": sorted(manifest["speaker"].astype(str).unique())}


def _calibration_text(cfg: RunConfig, cal: dict) -> str:
    where = ("the speakers the model held out of training for early stopping"
             if cal["split"] == "model_validation" else
             f"a speaker-grouped {cfg.calibration.val_fraction:.0%} of the training data held out of "
             "model fitting")
    return (f"temperature scaling (NLL minimised over one scalar T) on {where} "
            f"({cal['n']} utterances, {len(cal['speakers'])} speakers)")


def _licence(training: dict[str, Any]) -> dict[str, Any]:
    terms = {c: v["licence"] or "unknown: your own corpus, its terms apply" for c, v in training["corpora"].items()}
    nc = [c for c, t in terms.items() if "NC" in t or "non-commercial" in t.lower() or "research" in t.lower()]
    text = ("These weights were trained on " + ", ".join(terms) + " and inherit their terms"
            + (f"; {', '.join(nc)} allow(s) non-commercial / research use only, so this model may "
               "not be used commercially" if nc else "") + ".")
    return {"summary": text, "corpora": terms, "non_commercial": bool(nc)}


def _backbone(pipeline) -> dict[str, Any] | None:
    kind, params = pipeline.streams_spec[0]
    if kind != "ssl":
        return None
    ext = pipeline.extractors[0]
    bb = ext.load()
    return {"id": params.get("backbone", ext.backbone), "kind": bb.kind,
            "checksum": bb.weights_checksum()}


def train_model(cfg: RunConfig, model_out: str | Path, *, run_dir: str | Path | None = None,
                evaluate: bool = True, progress: bool = True, console=None) -> TrainResult:
    """Evaluate ``cfg`` (unless ``evaluate`` is False), refit it on all data, write ``model_out``."""
    log = console.print if console is not None else (lambda *a, **k: None)
    pipeline, _ = check_config(cfg)
    try:
        pipeline.check_portable()
    except NotPortableError as exc:
        raise NotPortableError(
            f"{exc} A recogniser meets one clip of an unknown speaker; to adapt it to known speakers "
            "a stated adaptation source (their unlabelled recordings) would be needed, which serkit "
            f"does not export. ({TRANSDUCTIVE_NOTE})") from None
    for ev in cfg.card_evaluations:  # fail fast on a bad override, before hours of work
        check_config(_variant(cfg, ev.overrides))
    t0 = time.time()
    evaluations, run_dirs = [], []
    if evaluate:
        base = Path(run_dir) if run_dir else Path(cfg.out_dir) / f"{cfg.name}-train"
        todo = [("main", f"the recipe's own protocol ({cfg.protocol.kind})", cfg, base / "main")]
        todo += [(ev.name, ev.description, _variant(cfg, ev.overrides), base / ev.name)
                 for ev in cfg.card_evaluations]
        for name, desc, c, rd in todo:
            log(f"[bold]evaluation[/] {name}: {desc}")
            res = run_experiment(c, rd, progress=progress, console=console)
            evaluations.append(evaluation_summary(name, desc, res.metrics, res.run_dir))
            run_dirs.append(res.run_dir)
            log(f"  UA {100 * res.metrics['ua']['mean']:.1f} ± {100 * res.metrics['ua']['std']:.1f}")

    log("[bold]refitting on all the data[/]")
    seed_everything(cfg.seed)
    manifest, _problems, _excluded = load_manifest(cfg)
    classes = sorted(manifest["label"].astype(str).unique())
    est = build_estimator(cfg, speaker_independent=True)
    preflight(est, pipeline, manifest, classes)
    fs = pipeline.fit(manifest).transform_manifest(manifest, progress=progress)
    y = fs.manifest["label"].astype(str).to_numpy()
    groups = fs.manifest["speaker"].astype(str).to_numpy()
    aug = None
    if cfg.augment.copies:
        # the final model has no test speakers, so any other speaker could talk in its babble; the
        # talkers are still chosen under the recipe's own folds (a stricter rule that is just as
        # valid), so the copies made for the main evaluation are the same ones, served from the cache
        # (when every clip trains in some fold; otherwise any other speaker)
        all_folds = cfg.model_copy(update={"protocol": cfg.protocol.model_copy(update={"max_folds": None})})
        rows = [(f.train, f.test) for f in protocol_folds(all_folds, fs.manifest)[0]]
        covered = np.unique(np.concatenate([tr for tr, _ in rows])) if rows else np.zeros(0, int)
        aug = augment_features(fs.manifest, rows if len(covered) == len(y) else None, pipeline,
                               cfg.augment, cfg.seed, progress=progress,
                               log=(lambda m: console.print(m, markup=False, highlight=False))
                               if console is not None else None)
        log(describe(aug.record))
    X, y, groups, clean = with_copies(fs.X, y, groups, np.arange(len(y)), aug)
    est, cal = fit_calibrated(est, X, y, groups, None, cfg.calibration, cfg.seed, clean=clean)
    training = _training_data(fs.manifest, len(fs.skipped))
    if aug is not None:
        training["augmentation"] = {k: v for k, v in aug.record.items() if k != "skipped_examples"}
    calibration = None
    if cal is not None:
        calibration = {"method": "temperature", "temperature": round(cal["temperature"], 6),
                       "split": cal["split"], "utterances": cal["n"], "speakers": len(cal["speakers"]),
                       "fitted_on": _calibration_text(cfg, cal)}
        log(f"temperature {cal['temperature']:.3f} fitted on {cal['n']} utterances of "
            f"{len(cal['speakers'])} held-out training speakers")
    card = {
        "label_set": cfg.data.label_set,
        "label_options": {"calm": cfg.data.calm, "boredom": cfg.data.boredom, "excited": cfg.data.excited},
        "description": cfg.description,
        "backbone": _backbone(pipeline),
        "model": {"name": cfg.model.name, "params": cfg.model.params, "grid": cfg.model.grid,
                  "best_params": {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                                  for k, v in getattr(est, "best_params_", {}).items()}},
        "training_data": training,
        "evaluations": evaluations,
        "calibration": calibration,
        "licence": _licence(training),
        "transductive": False,
        "seed": cfg.seed,
        "train_wall_s": round(time.time() - t0, 1),
    }
    out = save_model_dir(model_out, name=Path(model_out).name, pipeline=pipeline, estimator=est,
                         card=card, config_yaml=yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    from serkit.inference.modeldir import read_card

    (out / "README.md").write_text(render_card(read_card(out)))
    return TrainResult(out, card, run_dirs)

