"""Explanations written into a run directory: attention weights (during the run) and Grad-CAM
maps of the trained fold models (``serkit explain gradcam RUN_DIR``)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from serkit.config import load_config
from serkit.models.capabilities import Attends


def save_attention(est, X, keys: np.ndarray, labels: np.ndarray, fold_dir: Path) -> Path | None:
    """``fold_dir/attention.npz`` for models with attention pooling; None for the others.

    The file loads without pickle (``np.load(path, allow_pickle=False)``): ``weights`` (float32,
    1-D) holds every utterance's weights one after the other, utterance ``i`` being
    ``weights[offsets[i]:offsets[i + 1]]``; ``offsets`` (int64, n + 1); ``keys`` and ``labels``
    are unicode arrays of length n.
    """
    if not isinstance(est, Attends):
        return None
    weights = est.attention(X)
    if weights is None:
        return None
    parts = [np.asarray(w, dtype=np.float32).ravel() for w in weights]
    keys, labels = np.asarray(keys).astype(str), np.asarray(labels).astype(str)
    if not len(keys) == len(labels) == len(parts):
        raise ValueError(f"attention: {len(parts)} weight vectors for {len(keys)} keys and {len(labels)} labels")
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(w) for w in parts])
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    path = fold_dir / "attention.npz"
    np.savez_compressed(path, keys=keys, labels=labels, weights=flat, offsets=offsets)
    return path


def _choose(pred: pd.DataFrame, per_class: int, keys: Sequence[str] | None, seed: int) -> pd.DataFrame:
    if keys:
        chosen = pred[pred["key"].isin(keys)]
        missing = sorted(set(keys) - set(chosen["key"]))
        if missing:
            raise ValueError(f"utterances not in this run's test sets: {missing[:5]}")
        return chosen
    return pred.sample(frac=1.0, random_state=seed).groupby("true").head(per_class).sort_values("true")


def gradcam_run(run_dir: str | Path, *, fold: str | None = None, per_class: int = 1,
                keys: Sequence[str] | None = None, seed: int = 0) -> list[Path]:
    """Grad-CAM maps for test utterances of a run's CNN fold models.

    Samples ``per_class`` test utterances per true class in every fold (or the given ``keys``),
    recomputes their features from the run's saved config (feature cache makes this cheap), and
    writes ``folds/<fold>/gradcam/<key>.npz`` (map, spec, key, label, pred) and a ``.png``.
    """
    from serkit.evaluation.gradcam import gradcam_for_estimator, save_gradcam_png
    from serkit.features.pipeline import FeaturePipeline, take
    from serkit.models.persist import load_estimator

    run_dir = Path(run_dir)
    for name in ("config.yaml", "manifest.csv", "predictions.csv"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a complete serkit run directory (no {name})")
    cfg = load_config(run_dir / "config.yaml")
    manifest = pd.read_csv(run_dir / "manifest.csv", dtype={"speaker": str})
    preds = pd.read_csv(run_dir / "predictions.csv", dtype={"speaker": str})
    fold_names = [fold] if fold else sorted(preds["fold"].unique())
    written: list[Path] = []
    X = None
    for fname in fold_names:
        model_dir = run_dir / "folds" / fname / "model"
        if not (model_dir / "estimator.json").is_file():
            raise FileNotFoundError(f"{model_dir} missing: the run was made with model.save=false "
                                    "or by a serkit older than the pickle-free model format")
        est = load_estimator(model_dir)
        if getattr(est, "gradcam_target_", None) is None:
            raise ValueError(f"{cfg.model.name} has no convolutional layer for Grad-CAM")
        chosen = _choose(preds[preds["fold"] == fname], per_class, keys, seed)
        if X is None:  # features of the whole manifest (per-speaker normalisation needs them all)
            fs = FeaturePipeline.from_config(cfg.audio, cfg.features).fit(manifest) \
                .transform_manifest(manifest, progress=False)
            X, manifest = fs.X, fs.manifest
        index = {k: i for i, k in enumerate(manifest["key"])}
        idx = np.array([index[k] for k in chosen["key"]])
        Xs = take(X, idx)
        maps = gradcam_for_estimator(est, Xs)
        spec = Xs["spec"] if isinstance(Xs, dict) else Xs
        out = run_dir / "folds" / fname / "gradcam"
        out.mkdir(parents=True, exist_ok=True)
        for i, (_, row) in enumerate(chosen.iterrows()):
            stem = row["key"].replace("/", "__")
            np.savez_compressed(out / f"{stem}.npz", map=maps[i], spec=np.squeeze(spec[i]),
                                key=row["key"], label=row["true"], pred=row["pred"])
            written.append(save_gradcam_png(maps[i], spec[i], out / f"{stem}.png",
                                            title=f"{row['key']}: true {row['true']}, predicted {row['pred']}"))
    return written
