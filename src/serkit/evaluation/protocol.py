"""Run an experiment: manifest → features → folds → fit/predict per fold → metrics and run dir."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Mapping
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone

import serkit
from serkit.config import RunConfig, dump_config
from serkit.corpora import load_corpora
from serkit.corpora.manifest import LabelOptions
from serkit.evaluation import metrics as M
from serkit.evaluation.explain import save_attention
from serkit.evaluation.splits import Fold, ProtocolInfo, make_folds
from serkit.features.base import make_extractor
from serkit.features.extract import extract_manifest
from serkit.models.classical import GroupedGridSearch
from serkit.models.registry import make_model


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    protocol: ProtocolInfo
    failures: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def load_manifest(cfg: RunConfig) -> tuple[pd.DataFrame, list[dict]]:
    """The run's manifest (label set applied, optional seeded subsample) and the adapters' problems."""
    opts = LabelOptions(calm=cfg.data.calm, boredom=cfg.data.boredom, excited=cfg.data.excited)
    specs = cfg.data.corpus_roots()
    for name, root in specs:
        if not root.exists():
            raise FileNotFoundError(f"corpus folder for {name!r} not found: {root} (set data.data_dir "
                                    "or SERKIT_DATA, or the corpus root in the config)")
    result = load_corpora(cfg.data.corpus_specs(), label_set=cfg.data.label_set, label_options=opts)
    manifest = result.manifest
    if cfg.data.max_per_label:
        manifest = (manifest.sample(frac=1.0, random_state=cfg.seed).groupby("label")
                    .head(cfg.data.max_per_label).sort_index().reset_index(drop=True))
    if manifest.empty:
        raise ValueError("the manifest is empty: no usable utterances were found")
    return manifest, [p.as_dict() for p in result.problems]


def metadata_features(manifest: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Label-encode manifest columns (e.g. intensity, statement, gender) as extra numeric features."""
    cols = []
    for c in columns:
        if c not in manifest.columns:
            raise ValueError(f"features.metadata names {c!r}, which the manifest does not have "
                             f"(columns: {', '.join(manifest.columns)})")
        codes, _ = pd.factorize(manifest[c].astype(str), sort=True)
        cols.append(codes.astype(np.float32))
    return np.stack(cols, axis=1) if cols else np.zeros((len(manifest), 0), np.float32)


def _take(X, idx):
    return {k: v[idx] for k, v in X.items()} if isinstance(X, Mapping) else X[idx]


def build_features(cfg: RunConfig, manifest: pd.DataFrame, progress: bool = True, log=print):
    """Extract the configured features; returns ``(X, manifest of usable rows, failures)``.

    ``X`` is an array, or ``{"spec": ..., "scalars": ...}`` when ``features.secondary`` is set.
    Files that fail are reported and skipped; everything else is kept.
    """
    fc = cfg.features
    streams = [(fc.kind, fc.params)] + ([(fc.secondary.kind, fc.secondary.params)] if fc.secondary else [])
    results = [extract_manifest(manifest, make_extractor(kind, params), cfg.audio.model_dump(),
                                cache_dir=fc.cache_dir, n_jobs=fc.n_jobs, progress=progress)
               for kind, params in streams]
    ok = np.logical_and.reduce([r.ok for r in results])
    failures = {f["path"]: f for r in results for f in r.failures}
    for f in failures.values():
        log(f"[yellow]skipped[/] {f['error']}")
    arrays = [r.features[ok[r.ok]] for r in results]
    manifest = manifest[ok].reset_index(drop=True)
    speakers = manifest["speaker"].astype(str).to_numpy()
    if fc.speaker_norm:
        arrays = [speaker_normalize(a, speakers) for a in arrays]
    if fc.metadata:
        if arrays[-1].ndim != 2:
            raise ValueError("features.metadata can only be appended to vector features "
                             "(use features.secondary for spectrogram models)")
        arrays[-1] = np.hstack([arrays[-1], metadata_features(manifest, fc.metadata)])
    X = {"spec": arrays[0], "scalars": arrays[1]} if fc.secondary else arrays[0]
    return X, manifest, list(failures.values())


def speaker_normalize(X: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Z-normalise each speaker's features with that speaker's own mean and std (no labels used)."""
    out = np.empty_like(X, dtype=np.float32)
    for s in np.unique(speakers):
        idx = speakers == s
        axes = (0,) if X.ndim == 2 else tuple(i for i in range(X.ndim) if i != 1)
        mu = X[idx].mean(axis=axes, keepdims=True)
        sd = X[idx].std(axis=axes, keepdims=True)
        out[idx] = (X[idx] - mu) / np.where(sd > 1e-8, sd, 1.0)
    return out


def build_estimator(cfg: RunConfig, info: ProtocolInfo):
    est = make_model(cfg.model.name, cfg.model.params, cfg.seed)
    if cfg.model.grid:
        est = GroupedGridSearch(est, cfg.model.grid, inner_folds=cfg.model.inner_folds,
                                grouped=info.speaker_independent, scoring=cfg.model.scoring,
                                seed=cfg.seed)
    return est


def _model_input(est, X):
    """scikit-learn models get 2-D arrays; torch estimators (which have ``embed``) get X as is."""
    if hasattr(est, "embed") or isinstance(X, Mapping) or X.ndim <= 2:
        return X
    return X.reshape(len(X), -1)


def _fit(est, X, y, groups, validation=None):
    """Fit with speaker groups where the estimator takes them, and the protocol's validation
    speakers (speaker_holdout) where it takes those."""
    kw = {}
    if getattr(est, "accepts_groups", False) or getattr(est, "accepts_validation", False):
        kw["groups"] = groups
    if validation is not None and getattr(est, "accepts_validation", False):
        kw["validation"] = validation
    return est.fit(_model_input(est, X), y, **kw)


def _proba(est, X, classes: list[str]) -> np.ndarray:
    p = est.predict_proba(_model_input(est, X))
    out = np.zeros((len(p), len(classes)), dtype=np.float64)
    for j, c in enumerate([str(c) for c in est.classes_]):
        out[:, classes.index(c)] = p[:, j]
    return out


def _embedding(est, X) -> np.ndarray:
    if hasattr(est, "embed"):
        return np.asarray(est.embed(X))
    flat = X.reshape(len(X), -1)  # classical models: the (standardised) input features
    sd = flat.std(axis=0)
    return (flat - flat.mean(axis=0)) / np.where(sd > 1e-8, sd, 1.0)


def run_experiment(cfg: RunConfig, out_dir: str | Path | None = None, *, progress: bool = True,
                   console=None) -> RunResult:
    """Run every fold of ``cfg`` and write the run directory (see docs/ARCHITECTURE.md)."""
    t0 = time.time()
    seed_everything(cfg.seed)
    log = console.print if console is not None else (lambda *a, **k: None)
    run_dir = Path(out_dir) if out_dir else Path(cfg.out_dir) / f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")

    manifest, problems = load_manifest(cfg)
    log(f"[bold]{cfg.name}[/]: {len(manifest)} utterances, {manifest['speaker'].nunique()} speakers, "
        f"labels {({k: int(v) for k, v in manifest['label'].value_counts().sort_index().items()})}")
    X, manifest, failures = build_features(cfg, manifest, progress, log)
    manifest.to_csv(run_dir / "manifest.csv", index=False)

    p = cfg.protocol
    kw = {} if p.n_folds is None else {"n_folds": p.n_folds}
    folds, info = make_folds(manifest, p.kind, speaker_dependent=p.speaker_dependent,
                             max_folds=p.max_folds, test_size=p.test_size, seed=cfg.seed,
                             folds_csv=p.folds_csv, corpus=p.emobox_corpus, **kw)
    label_note = "speaker-independent" if info.speaker_independent else "SPEAKER-DEPENDENT"
    log(f"protocol: {info.kind} ({label_note}): {info.description}")

    classes = sorted(manifest["label"].astype(str).unique())
    y = manifest["label"].astype(str).to_numpy()
    groups = manifest["speaker"].astype(str).to_numpy()
    template = build_estimator(cfg, info)
    rows, fold_metrics = [], []
    for k, fold in enumerate(folds):
        tf = time.time()
        seed_everything(cfg.seed + k)
        est = clone(template)
        if hasattr(est, "checkpoint_dir") and getattr(est, "checkpoint_dir", None) is None:
            est.set_params(checkpoint_dir=str(run_dir / "folds" / fold.name / "checkpoints"))
        validation = None if fold.valid is None else (_take(X, fold.valid), y[fold.valid])
        # speaker groups drive inner validation only where the protocol is speaker-independent;
        # under a declared speaker-dependent split the inner split is stratified random too
        train_groups = groups[fold.train] if info.speaker_independent else None
        _fit(est, _take(X, fold.train), y[fold.train], train_groups, validation)
        proba = _proba(est, _take(X, fold.test), classes)
        pred = np.asarray(classes)[proba.argmax(axis=1)]
        fm = M.compute(y[fold.test], pred, classes, proba)
        fm.update(fold=fold.name, n_train=int(len(fold.train)), n_test=int(len(fold.test)),
                  test_speakers=sorted(set(groups[fold.test]))[:50], fit_s=round(time.time() - tf, 2))
        if getattr(est, "precision_", None):
            fm["precision_mode"] = est.precision_   # e.g. "bf16-mixed": what training ran in
        if hasattr(est, "best_params_"):
            fm["best_params"] = {kk: (vv if isinstance(vv, (int, float, str, bool, type(None))) else str(vv))
                                 for kk, vv in est.best_params_.items()}
        fold_metrics.append(fm)
        log(f"  {fold.name}: UA {fm['ua']:.3f}  WA {fm['wa']:.3f}  F1 {fm['macro_f1']:.3f}  "
            f"(train {len(fold.train)}, test {len(fold.test)}, {fm['fit_s']:.0f} s)")
        test_keys = manifest["key"].to_numpy()[fold.test]
        part = pd.DataFrame({"fold": fold.name, "key": test_keys, "speaker": groups[fold.test],
                             "true": y[fold.test], "pred": pred})
        for j, c in enumerate(classes):
            part[f"prob_{c}"] = proba[:, j]
        rows.append(part)
        fdir = run_dir / "folds" / fold.name
        fdir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(fdir / "embeddings.npz", keys=test_keys,
                            embedding=_embedding(est, _take(X, fold.test)).astype(np.float32),
                            true=y[fold.test], pred=pred)
        save_attention(est, _take(X, fold.test), test_keys, y[fold.test], fdir)
        if getattr(est, "history_", None):
            pd.DataFrame(est.history_).to_csv(fdir / "history.csv", index=False)
        if cfg.model.save:
            joblib.dump({"estimator": est, "classes": classes, "features": cfg.features.model_dump(),
                         "audio": cfg.audio.model_dump()}, fdir / "model.joblib")

    pd.concat(rows, ignore_index=True).to_csv(run_dir / "predictions.csv", index=False)
    agg = M.aggregate(fold_metrics, classes)
    result = {
        "name": cfg.name, "description": cfg.description, "serkit_version": serkit.__version__,
        "model": cfg.model.name, "features": cfg.features.kind,
        "corpora": [c.name for c in cfg.data.corpora], "label_set": cfg.data.label_set,
        "classes": classes, "seed": cfg.seed, "n_utterances": int(len(manifest)),
        "n_speakers": int(manifest["speaker"].nunique()),
        "protocol": {"kind": info.kind, "speaker_independent": info.speaker_independent,
                     "description": info.description, "n_folds": len(folds)},
        **agg, "folds": fold_metrics,
        "published": cfg.published.model_dump() if cfg.published else None,
        "skipped_files": failures, "corpus_problems": problems[:200],
        "wall_time_s": round(time.time() - t0, 1),
    }
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=1))
    return RunResult(run_dir, result, info, failures)
