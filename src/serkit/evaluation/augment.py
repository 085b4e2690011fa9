"""Train-time waveform augmentation of a run (``augment:`` in the config, :class:`AugmentConfig`).

Each training clip gets ``copies`` augmented copies (the audiomentations transforms of
:data:`serkit.training.augmentation.WAVEFORM_AUGMENTATIONS`), made ONCE for the whole run, their
features extracted with the run's extractor and cached; each fold then appends the copies of its
own training rows (same label, same speaker group, so the model's speaker-grouped inner / early
stopping splits keep copies with their originals). Test rows are never augmented.

One copy serves every fold because babble talkers obey :func:`choose_talkers`: the talkers mixed into
a clip's copy are speakers in the TRAINING part of every fold in which that clip trains (group_kfold:
the speakers of the clip's own held-out group; leave_corpus_out: its corpus), never a test speaker
of such a fold; when no other speaker qualifies (one training speaker, e.g. TESS), the clip's own
speaker's other training clips. ``serkit train`` passes the recipe's own folds for its final model
too (so it reuses the main evaluation's copies); with ``folds=None``, any other speaker.

Everything is seeded per (clip key, copy): the copies are the same whatever the folds run.
"""
from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from serkit.config import AugmentConfig
from serkit.features.cache import FeatureCache
from serkit.features.extract import check_finite
from serkit.features.pipeline import FeaturePipeline, take
from serkit.io.audio import AudioError, load_audio
from serkit.training.augmentation import babble_talkers, waveform_augmenter

__all__ = ["Augmented", "augment_features", "check_augmentable", "choose_talkers", "copy_seed",
           "describe", "with_copies"]

#: folds as ``(train rows, test rows)`` index arrays into the manifest
FoldRows = Sequence[tuple[np.ndarray, np.ndarray]]


def copy_seed(seed: int, key: str, copy: int, stream: int = 0) -> int:
    """A seed for one copy of one clip (``stream`` separates independent draws of that copy)."""
    h = hashlib.blake2b(f"{int(seed)}|{key}|{int(copy)}|{int(stream)}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") % (2**31 - 1)


def check_augmentable(pipeline: FeaturePipeline, augment: AugmentConfig) -> None:
    """Raise ``ValueError`` when augmented copies cannot be appended to this pipeline's model input,
    or a transform has bad parameters."""
    if augment.copies == 0:
        return
    why = []
    if pipeline.two_branch:
        why.append("features.secondary is set (two-branch input)")
    if pipeline.metadata:
        why.append(f"features.metadata {pipeline.metadata} (manifest columns)")
    if pipeline.test_time_speaker_norm:
        why.append("features.test_time_speaker_norm is on (the copies would enter each speaker's "
                   "statistics)")
    if why:
        raise ValueError("augment.copies > 0 needs one feature stream per clip computed from its "
                         "audio alone; not available with " + "; ".join(why))
    try:
        waveform_augmenter(augment.active, 0)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"augment.transforms: {exc}") from None


def choose_talkers(keys: Sequence[str], speakers: Sequence[str], folds: FoldRows | None, rows,
                   n_talkers: int, copies: int, seed: int) -> tuple[dict[int, list[list[int]]], dict]:
    """Babble talkers for every copy of every clip in ``rows``: ``{row: [[talker rows] per copy]}``.

    A clip's copy may use a row ``j`` only if, in every fold in which the clip is a training row,
    ``j`` is a training row and ``j``'s speaker is not a test speaker. Among those rows, up to
    ``n_talkers`` different speakers other than the clip's own are drawn, one utterance each; if
    there is no other speaker, up to ``n_talkers`` other utterances of the clip's own speaker (never
    the clip itself). ``folds=None`` (``serkit train``): every row is allowed. Rows that train in no
    fold get no entry. Deterministic in ``(seed, key, copy)``.

    Returns the talkers and counts ``{"own_speaker": copies that fell back to the clip's own
    speaker, "none": copies with no talker at all}``.
    """
    keys = np.asarray(keys).astype(str)
    spk = np.asarray(speakers).astype(str)
    n = len(keys)
    if folds is None:
        folds = [(np.arange(n), np.zeros(0, dtype=int))]
    train = np.zeros((len(folds), n), dtype=bool)
    test_spk = []
    for f, (tr, te) in enumerate(folds):
        train[f, np.asarray(tr, dtype=int)] = True
        test_spk.append(np.isin(spk, np.unique(spk[np.asarray(te, dtype=int)])))
    test_spk = np.asarray(test_spk).reshape(len(folds), n)
    pools: dict[bytes, np.ndarray] = {}
    out: dict[int, list[list[int]]] = {}
    counts = {"own_speaker": 0, "none": 0}
    for i in (int(r) for r in rows):
        member = train[:, i]
        if not member.any():
            continue
        sig = member.tobytes()
        if sig not in pools:   # rows allowed for every clip that trains in exactly these folds
            ok = train[member].all(axis=0) & ~test_spk[member].any(axis=0)
            pools[sig] = np.flatnonzero(ok)
        pool = pools[sig]
        others = pool[spk[pool] != spk[i]]
        other_speakers = np.unique(spk[others])
        per_copy = []
        for c in range(copies):
            rng = np.random.default_rng(copy_seed(seed, keys[i], c, stream=1))
            if len(other_speakers):
                chosen = rng.choice(other_speakers, size=min(n_talkers, len(other_speakers)), replace=False)
                talkers = []
                for s in chosen:
                    cand = others[spk[others] == s]
                    talkers.append(int(cand[rng.integers(len(cand))]))
            else:
                own = pool[(spk[pool] == spk[i]) & (pool != i)]
                talkers = sorted(int(t) for t in rng.choice(own, size=min(n_talkers, len(own)), replace=False))
                counts["own_speaker" if talkers else "none"] += 1
            per_copy.append(talkers)
        out[i] = per_copy
    return out, counts


@dataclass
class Augmented:
    """Features of the augmented copies: row ``r`` of ``X`` is copy ``copy[r]`` of manifest row
    ``source[r]``."""

    X: np.ndarray
    source: np.ndarray
    copy: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


def with_copies(X, y: np.ndarray, groups: np.ndarray | None, train: np.ndarray, aug: Augmented | None):
    """The training part ``train`` of ``(X, y, groups)`` followed by the copies of those rows.

    Returns ``(X, y, groups, clean)``; ``clean`` is True for the original rows."""
    train = np.asarray(train, dtype=int)
    Xtr, ytr = take(X, train), y[train]
    gtr = None if groups is None else groups[train]
    if aug is None or not len(aug.source):
        return Xtr, ytr, gtr, np.ones(len(train), dtype=bool)
    sel = np.flatnonzero(np.isin(aug.source, train))
    src = aug.source[sel]
    Xtr = np.concatenate([Xtr, aug.X[sel]]) if len(sel) else Xtr
    ytr = np.concatenate([ytr, y[src]])
    gtr = None if groups is None else np.concatenate([gtr, groups[src]])
    clean = np.concatenate([np.ones(len(train), bool), np.zeros(len(sel), bool)])
    return Xtr, ytr, gtr, clean


def augment_features(manifest: pd.DataFrame, folds: FoldRows | None, pipeline: FeaturePipeline,
                     augment: AugmentConfig, seed: int, *, progress: bool = True, log=None) -> Augmented:
    """Features of ``augment.copies`` augmented copies of every row that trains in some fold of
    ``folds`` (every row when ``folds`` is None), cached under the run's feature cache.

    A copy whose audio or features fail is skipped with its reason (logged, counted)."""
    check_augmentable(pipeline, augment)
    spec = augment.active
    t0 = time.perf_counter()
    n = len(manifest)
    rows = np.arange(n) if folds is None else \
        np.unique(np.concatenate([np.asarray(tr, dtype=int) for tr, _ in folds] or [np.zeros(0, int)]))
    keys = manifest["key"].astype(str).to_numpy()
    paths = manifest["path"].astype(str).to_numpy()
    speakers = manifest["speaker"].astype(str).to_numpy()
    talkers_n = babble_talkers(spec)
    talkers, fallback = ({}, {"own_speaker": 0, "none": 0}) if not talkers_n else \
        choose_talkers(keys, speakers, folds, rows, talkers_n, augment.copies, seed)
    ext = pipeline.extractors[0]
    sr = pipeline.sample_rate
    cache = FeatureCache(pipeline.cache_dir, {"audio": pipeline.audio, "extractor": ext.cache_params(),
                                              "augment": spec, "order": list(spec)})
    augmenter = waveform_augmenter(spec, seed)
    talker_audio = {**pipeline.audio, "silence_dbfs": None, "min_duration_s": 0.0}

    @functools.lru_cache(maxsize=512)
    def talker(j: int) -> np.ndarray:
        return load_audio(paths[j], **talker_audio)

    def content(j: int) -> str:
        try:
            return cache.key_for(paths[j])
        except OSError:
            return "?"

    todo = [(int(i), c) for i in rows for c in range(augment.copies)]
    feats, src, cp, failures = [], [], [], []
    cached = computed = 0
    audio_s = 0.0
    bar = tqdm(total=len(todo), desc=f"{ext.name} features of augmented copies", disable=not progress,
               unit="copy")
    for i, c in todo:
        tk = talkers.get(i, [[]] * augment.copies)[c]
        ident = "|".join([content(i), keys[i], str(c), str(seed),
                          ",".join(f"{keys[j]}:{content(j)}" for j in tk)])
        ckey = hashlib.blake2b(ident.encode(), digest_size=16).hexdigest()
        f = cache.load(ckey)
        if f is None:
            try:
                x = load_audio(paths[i], **pipeline.audio)
                y = augmenter(x, sr, seed=copy_seed(seed, keys[i], c, stream=2),
                              babble=[talker(j) for j in tk])
                f = check_finite(np.asarray(ext(y, sr), dtype=np.float32), f"{paths[i]} (augmented copy {c})")
            except AudioError as exc:
                failures.append({"key": keys[i], "copy": c, "reason": str(exc)})
            except Exception as exc:  # one bad copy must not lose the run
                failures.append({"key": keys[i], "copy": c,
                                 "reason": f"{paths[i]} (augmented copy {c}): {type(exc).__name__}: {exc}"})
            else:
                cache.store(ckey, f)
                computed += 1
                audio_s += len(y) / sr
        else:
            cached += 1
        if f is not None:
            feats.append(f)
            src.append(i)
            cp.append(c)
        bar.update()
    bar.close()
    cache.index.save()
    if log is not None:
        for fl in failures:
            log(f"skipped augmented copy: {fl['reason']}")
    shapes = {a.shape for a in feats}
    if len(shapes) > 1:
        raise ValueError(f"extractor {ext.name!r} returned different shapes {sorted(shapes)[:3]} for "
                         "augmented copies; set audio.duration_s (or the extractor's frames)")
    X = np.stack(feats) if feats else np.zeros((0,), np.float32)
    wall = time.perf_counter() - t0
    record = {"copies": augment.copies, "transforms": spec, "seed": seed,
              "clips": int(len(rows)), "rows": int(len(feats)), "skipped": len(failures),
              "skipped_examples": failures[:20], "cached": cached, "computed": computed,
              "audio_s": round(audio_s, 1), "wall_s": round(wall, 1),
              "babble": None if not talkers_n else {
                  "talkers": talkers_n, "rule": "talkers are training speakers of every fold in which "
                  "the clip trains (never a test speaker of such a fold)" if folds is not None
                  else "any other speaker (no test folds)", **fallback}}
    return Augmented(X, np.asarray(src, dtype=int), np.asarray(cp, dtype=int), record)


def describe(record: Mapping[str, Any]) -> str:
    """One log line about the copies that were made."""
    b = record.get("babble") or {}
    extra = f"; babble fell back to the clip's own speaker for {b['own_speaker']} copies" \
        if b.get("own_speaker") else ""
    return (f"augmented copies: {record['rows']} of {record['clips']} training clips × {record['copies']} "
            f"({record['cached']} cached, {record['skipped']} skipped), {record['audio_s']:.0f} s of "
            f"audio computed in {record['wall_s']:.0f} s{extra}")
