"""Run an experiment: manifest → features → folds → fit/predict per fold → metrics and run dir.

Everything that can be checked before feature extraction is checked first (:func:`check_config`,
then a dry fit on synthetic data shaped like the first file's features), so a typo fails in
seconds, not after hours of extraction. A run that fails leaves nothing that looks finished: a run
directory is finished when it has ``metrics.json``, which is written last.
"""
from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

import serkit
from serkit.config import TRANSDUCTIVE_NOTE, RunConfig, dump_config
from serkit.corpora import load_corpora
from serkit.corpora.manifest import LabelOptions
from serkit.evaluation import audit
from serkit.evaluation import metrics as M
from serkit.evaluation.augment import augment_features, check_augmentable, describe, with_copies
from serkit.evaluation.estimators import (build_estimator, check_estimator, fit_calibrated, model_input,
                                         preflight)
from serkit.evaluation.explain import save_attention
from serkit.evaluation.splits import SPLITS, ProtocolInfo, common_classes, make_folds
from serkit.features.pipeline import FeaturePipeline, take
from serkit.models import capabilities as cap
from serkit.models.persist import save_estimator

SCHEMA_VERSION = 2


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    protocol: ProtocolInfo
    #: every input row that was not used, with its stage and reason (metrics.json accounting)
    failures: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def check_config(cfg: RunConfig) -> tuple[FeaturePipeline, object]:
    """Everything checkable without audio: feature kinds and parameters, model name, parameters
    and grid, protocol, corpus folders. Raises ``ValueError`` / ``FileNotFoundError``."""
    if cfg.protocol.kind not in SPLITS:
        raise ValueError(f"unknown protocol {cfg.protocol.kind!r}; choose one of {sorted(SPLITS)}")
    pipeline = FeaturePipeline.from_config(cfg.audio, cfg.features)
    pipeline.extractors  # noqa: B018  (builds every extractor: unknown kinds / bad params fail here)
    check_augmentable(pipeline, cfg.augment)
    template = build_estimator(cfg, speaker_independent=True)
    check_estimator(template, cfg)
    for name, root in cfg.data.corpus_roots():
        if not root.exists():
            raise FileNotFoundError(f"corpus folder for {name!r} not found: {root} (set data.data_dir "
                                    "or SERKIT_DATA, or the corpus root in the config)")
    return pipeline, template


def load_manifest(cfg: RunConfig) -> tuple[pd.DataFrame, list[dict], dict[str, int]]:
    """The run's manifest (label set applied, optional seeded subsample), the adapters' problems
    and the rows left out on purpose (reason -> count)."""
    opts = LabelOptions(calm=cfg.data.calm, boredom=cfg.data.boredom, excited=cfg.data.excited)
    result = load_corpora(cfg.data.corpus_specs(), label_set=cfg.data.label_set, label_options=opts)
    manifest, excluded = result.manifest, dict(result.excluded)
    if cfg.protocol.kind == "leave_corpus_out" and cfg.protocol.classes == "common" \
            and manifest["corpus"].nunique() > 1:  # classes not in every corpus: not in the run at all
        keep = manifest["label"].astype(str).isin(common_classes(manifest))
        for label, n in manifest.loc[~keep, "label"].value_counts().sort_index().items():
            excluded[f"label {label!r} not in every corpus (protocol.classes=common)"] = int(n)
        manifest = manifest[keep].reset_index(drop=True)
    if cfg.data.max_per_label:
        before = len(manifest)
        manifest = (manifest.sample(frac=1.0, random_state=cfg.seed).groupby("label")
                    .head(cfg.data.max_per_label).sort_index().reset_index(drop=True))
        excluded[f"subsampled to data.max_per_label={cfg.data.max_per_label}"] = before - len(manifest)
    if manifest.empty:
        why = [f"{n} left out: {reason}" for reason, n in excluded.items()]
        kinds = pd.Series([p.kind for p in result.problems], dtype=object).value_counts()
        why += [f"{n} {kind}" for kind, n in kinds.items()]
        raise ValueError("the manifest is empty: no usable utterances were found"
                         + (f" ({'; '.join(why[:8])}; see `serkit data scan`)" if why else ""))
    return manifest, [p.as_dict() for p in result.problems], excluded


def _proba(est, X, classes: list[str]) -> np.ndarray:
    p = est.predict_proba(model_input(est, X))
    out = np.zeros((len(p), len(classes)), dtype=np.float64)
    for j, c in enumerate([str(c) for c in est.classes_]):
        out[:, classes.index(c)] = p[:, j]
    return out


def _embedding(est, X) -> np.ndarray:
    if isinstance(est, cap.Embeds):
        return np.asarray(est.embed(X))
    flat = X.reshape(len(X), -1)  # classical models: the (standardised) input features
    sd = flat.std(axis=0)
    return (flat - flat.mean(axis=0)) / np.where(sd > 1e-8, sd, 1.0)


def _protocol_record(info: ProtocolInfo, n_folds: int, transductive: bool) -> dict:
    desc = info.description + (f" — {TRANSDUCTIVE_NOTE}" if transductive else "")
    return {"kind": info.kind, "speaker_independent": info.speaker_independent, "description": desc,
            "n_folds": n_folds, "transductive": transductive,
            "transductive_note": TRANSDUCTIVE_NOTE if transductive else None}


def _prepare_run_dir(cfg: RunConfig, out_dir) -> tuple[Path, bool]:
    run_dir = Path(out_dir) if out_dir else Path(cfg.out_dir) / f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.json", "predictions.csv", "report.html", "FAILED.txt"):  # a rerun into --out
        (run_dir / stale).unlink(missing_ok=True)
    return run_dir, created


def _abandon(run_dir: Path, created: bool, exc: BaseException) -> None:
    """A failed run: remove what we created unless it holds checkpoints to resume from."""
    has_ckpt = any(run_dir.glob("folds/*/checkpoints/*.ckpt"))
    if created and not has_ckpt:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    (run_dir / "predictions.csv").unlink(missing_ok=True)
    (run_dir / "FAILED.txt").write_text(f"{type(exc).__name__}: {exc}\n(checkpoints are kept; rerun "
                                        "with the same --out to resume)\n")


def run_experiment(cfg: RunConfig, out_dir: str | Path | None = None, *, progress: bool = True,
                   console=None) -> RunResult:
    """Run every fold of ``cfg`` and write the run directory (see docs/ARCHITECTURE.md)."""
    pipeline, _ = check_config(cfg)
    run_dir, created = _prepare_run_dir(cfg, out_dir)
    try:
        return _run(cfg, pipeline, run_dir, progress, console)
    except BaseException as exc:
        _abandon(run_dir, created, exc)
        raise


def protocol_folds(cfg: RunConfig, manifest: pd.DataFrame):
    """The folds (and their description) of ``cfg.protocol`` over ``manifest`` (deterministic in the seed)."""
    p = cfg.protocol
    kw = {} if p.n_folds is None else {"n_folds": p.n_folds}
    return make_folds(manifest, p.kind, speaker_dependent=p.speaker_dependent,
                      max_folds=p.max_folds, test_size=p.test_size, seed=cfg.seed,
                      folds_csv=p.folds_csv, corpus=p.emobox_corpus, classes=p.classes, **kw)


def _run(cfg: RunConfig, pipeline: FeaturePipeline, run_dir: Path, progress: bool, console) -> RunResult:
    t0 = time.time()
    seed_everything(cfg.seed)
    log = console.print if console is not None else (lambda *a, **k: None)
    dump_config(cfg, run_dir / "config.yaml")

    manifest, problems, excluded = load_manifest(cfg)
    t_scan = time.time()
    classes = sorted(manifest["label"].astype(str).unique())
    log(f"[bold]{cfg.name}[/]: {len(manifest)} utterances, {manifest['speaker'].nunique()} speakers, "
        f"labels {({k: int(v) for k, v in manifest['label'].value_counts().sort_index().items()})}")
    preflight(build_estimator(cfg, speaker_independent=True), pipeline, manifest, classes)

    plain = (lambda m: console.print(m, markup=False, highlight=False)) if console is not None else None
    fs = pipeline.fit(manifest).transform_manifest(manifest, progress=progress, log=plain)
    X, manifest = fs.X, fs.manifest
    t_feat = time.time()
    for e in fs.extraction:
        speed = f", {e['x_realtime']}× real time" if e["x_realtime"] else ""
        log(f"features {e['stream']}: {e['files']} files ({e['cached']} cached), "
            f"{e['audio_s']:.0f} s of audio computed in {e['wall_s']:.0f} s{speed}")
    acct = audit.accounting(problems, excluded, len(manifest), fs.skipped)
    manifest.to_csv(run_dir / "manifest.csv", index=False)
    transductive = pipeline.test_time_speaker_norm
    warnings_ = []
    if transductive:
        warnings_ = audit.speaker_label_warnings(manifest, cfg.features.speaker_label_warning)
        log(f"[bold yellow]{TRANSDUCTIVE_NOTE}[/]")
        for w in warnings_:
            log(f"[bold yellow]warning:[/] speaker {w['speaker']} recorded mostly {w['labels']} "
                f"(distance {w['distance']} from the corpus's label distribution): per-speaker "
                "normalisation removes emotion for such speakers, scores can fall below chance")

    folds, info = protocol_folds(cfg, manifest)
    label_note = "speaker-independent" if info.speaker_independent else "SPEAKER-DEPENDENT"
    log(f"protocol: {info.kind} ({label_note}{', TRANSDUCTIVE' if transductive else ''}): "
        f"{info.description}")

    y = manifest["label"].astype(str).to_numpy()
    groups = manifest["speaker"].astype(str).to_numpy()
    aug = None
    if cfg.augment.copies:   # made once for every fold; each fold appends its training rows' copies
        aug = augment_features(manifest, [(f.train, f.test) for f in folds], pipeline, cfg.augment,
                               cfg.seed, progress=progress, log=plain)
        log(describe(aug.record))
    template = build_estimator(cfg, speaker_independent=info.speaker_independent)
    rows, fold_metrics = [], []
    for k, fold in enumerate(folds):
        tf = time.time()
        seed_everything(cfg.seed + k)
        est = clone(template)
        if isinstance(est, cap.Checkpoints) and est.checkpoint_dir is None:
            est.set_params(checkpoint_dir=str(run_dir / "folds" / fold.name / "checkpoints"))
        validation = None if fold.valid is None else (take(X, fold.valid), y[fold.valid])
        # speaker groups drive inner validation only where the protocol is speaker-independent;
        # under a declared speaker-dependent split the inner split is stratified random too
        # the fold's training rows, then the augmented copies of those rows (never of test rows)
        X_tr, y_tr, g_tr, clean = with_copies(X, y, groups, fold.train, aug)
        train_groups = g_tr if info.speaker_independent else None
        # calibration (if any) is fitted on clean rows of the training part only, never on the test fold
        est, cal = fit_calibrated(est, X_tr, y_tr, train_groups, validation,
                                  cfg.calibration, cfg.seed + k, clean=clean)
        proba = _proba(est, take(X, fold.test), classes)
        pred = np.asarray(classes)[proba.argmax(axis=1)]
        fm = M.compute(y[fold.test], pred, classes, proba)
        if cal is not None:
            raw = _proba(est.estimator, take(X, fold.test), classes)
            fm.update(ece_uncalibrated=M.ece(y[fold.test], raw, classes), temperature=cal["temperature"],
                      calibration={"split": cal["split"], "n": cal["n"], "speakers": cal["speakers"][:50]})
        fm.update(fold=fold.name, n_train=int(len(y_tr)), n_train_clean=int(clean.sum()),
                  n_train_augmented=int((~clean).sum()), n_test=int(len(fold.test)),
                  test_speakers=sorted(set(groups[fold.test]))[:50], fit_s=round(time.time() - tf, 2),
                  missing_classes=audit.missing_classes(y, fold.test, classes),
                  missing_train_classes=audit.missing_classes(y, fold.train, classes))
        fm.update(fold.record)   # protocol-specific fields (leave_corpus_out: heldout_corpus, ...)
        if getattr(est, "precision_", None):
            fm["precision_mode"] = est.precision_   # e.g. "bf16-mixed": what training ran in
        if hasattr(est, "best_params_"):
            fm["best_params"] = {kk: (vv if isinstance(vv, (int, float, str, bool, type(None))) else str(vv))
                                 for kk, vv in est.best_params_.items()}
        fold_metrics.append(fm)
        missing = f"  [yellow]missing in test: {', '.join(fm['missing_classes'])}[/]" \
            if fm["missing_classes"] else ""
        ece_txt = f"  ECE {fm['ece']:.3f}" + (f" (uncalibrated {fm['ece_uncalibrated']:.3f}, T "
                                             f"{fm['temperature']:.2f})" if cal is not None else "")
        log(f"  {fold.name}: UA {fm['ua']:.3f}  WA {fm['wa']:.3f}  F1 {fm['macro_f1']:.3f}{ece_txt}  "
            f"(train {len(fold.train)}{f' + {(~clean).sum()} augmented' if aug is not None else ''}, "
            f"test {len(fold.test)}, {fm['fit_s']:.0f} s){missing}")
        test_keys = manifest["key"].to_numpy()[fold.test]
        part = pd.DataFrame({"fold": fold.name, "key": test_keys, "speaker": groups[fold.test],
                             "true": y[fold.test], "pred": pred})
        for j, c in enumerate(classes):
            part[f"prob_{c}"] = proba[:, j]
        rows.append(part)
        fdir = run_dir / "folds" / fold.name
        fdir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(fdir / "embeddings.npz", keys=test_keys.astype(str),
                            embedding=_embedding(est, take(X, fold.test)).astype(np.float32),
                            true=y[fold.test].astype(str), pred=pred.astype(str))
        save_attention(est, take(X, fold.test), test_keys, y[fold.test], fdir)
        if getattr(est, "history_", None):
            pd.DataFrame(est.history_).to_csv(fdir / "history.csv", index=False)
        if cfg.model.save:
            save_estimator(est, fdir / "model")

    pd.concat(rows, ignore_index=True).to_csv(run_dir / "predictions.csv", index=False)
    agg = M.aggregate(fold_metrics, classes)
    note = audit.missing_classes_note(fold_metrics)
    if note:
        log(f"[yellow]{note}[/]")
    t_end = time.time()
    result = {
        "schema_version": SCHEMA_VERSION,
        "name": cfg.name, "description": cfg.description, "serkit_version": serkit.__version__,
        "model": cfg.model.name, "features": cfg.features.kind,
        "corpora": sorted(manifest["corpus"].astype(str).unique()), "label_set": cfg.data.label_set,
        "classes": classes, "seed": cfg.seed, "n_utterances": int(len(manifest)),
        "n_speakers": int(manifest["speaker"].nunique()),
        "protocol": _protocol_record(info, len(folds), transductive),
        "calibration": cfg.calibration.model_dump(),
        "augment": aug.record if aug is not None else {"copies": 0},
        **agg, "folds": fold_metrics,
        "missing_classes_note": note, "speaker_label_warnings": warnings_,
        "published": cfg.published.model_dump() if cfg.published else None,
        "accounting": acct, "corpus_problems": problems[:200],
        "timing": {"scan_s": round(t_scan - t0, 1), "features_s": round(t_feat - t_scan, 1),
                   "folds_s": round(t_end - t_feat, 1), "total_s": round(t_end - t0, 1)},
        "extraction": fs.extraction,
        "wall_time_s": round(t_end - t0, 1),
    }
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(run_dir / "metrics.json")   # written last: its presence marks a finished run
    return RunResult(run_dir, result, info, acct["skipped"])
