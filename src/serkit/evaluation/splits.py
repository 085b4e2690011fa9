"""Evaluation protocols: how a manifest is cut into train / (valid) / test folds.

Speaker-independent protocols are the default. The random protocol exists only to reproduce
published numbers; it is marked speaker-dependent and every result printed from it says so.
:func:`check_speaker_overlap` guards every fold before anything is trained.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd


class SpeakerOverlapError(RuntimeError):
    """Raised when a speaker-independent fold has a speaker in both train and test."""


@dataclass
class Fold:
    name: str
    train: np.ndarray  # row indices into the manifest
    test: np.ndarray
    valid: np.ndarray | None = None
    #: extra fields for the fold's record in metrics.json (leave_corpus_out: ``heldout_corpus``...)
    record: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolInfo:
    kind: str
    speaker_independent: bool
    description: str


SplitFn = Callable[..., list[Fold]]
#: kind -> (function, speaker_independent: True / False / None = decided from the folds' speakers, text)
SPLITS: dict[str, tuple[SplitFn, bool | None, str]] = {}


def register(kind: str, speaker_independent: bool | None, description: str):
    def deco(fn: SplitFn) -> SplitFn:
        SPLITS[kind] = (fn, speaker_independent, description)
        return fn

    return deco


def _speakers(manifest: pd.DataFrame) -> np.ndarray:
    return manifest["speaker"].astype(str).to_numpy()


def _need_speakers(manifest: pd.DataFrame, n: int, kind: str) -> np.ndarray:
    spk = np.unique(_speakers(manifest))
    if len(spk) < n:
        raise ValueError(f"protocol {kind!r} needs at least {n} speakers, the manifest has "
                         f"{len(spk)} ({', '.join(spk[:5])})")
    return spk


@register("group_kfold", True, "speaker-independent {n} {folds} (speaker-grouped, label-stratified)")
def group_kfold(manifest: pd.DataFrame, *, n_folds: int = 5, seed: int = 42, **_) -> list[Fold]:
    _need_speakers(manifest, n_folds, "group_kfold")
    from sklearn.model_selection import StratifiedGroupKFold  # scikit-learn loads only when folds are made

    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    y, g = manifest["label"].astype(str).to_numpy(), _speakers(manifest)
    return [Fold(f"fold{i + 1}", tr, te)
            for i, (tr, te) in enumerate(splitter.split(np.zeros(len(y)), y, g))]


@register("loso", True, "leave-one-speaker-out ({n} {folds})")
def loso(manifest: pd.DataFrame, **_) -> list[Fold]:
    _need_speakers(manifest, 2, "loso")
    g = _speakers(manifest)
    folds = []
    from sklearn.model_selection import LeaveOneGroupOut

    for tr, te in LeaveOneGroupOut().split(np.zeros(len(g)), groups=g):
        folds.append(Fold(f"test_{g[te[0]]}", tr, te))
    return folds


@register("speaker_holdout", True,
          "speaker hold-out train/valid/test by speaker groups, rotated over {n} test groups")
def speaker_holdout(manifest: pd.DataFrame, *, n_folds: int = 10, seed: int = 42, **_) -> list[Fold]:
    """Study 002: speakers cut into ``n_folds`` groups; fold i tests on group i, validates on group
    i+1 and trains on the rest (8:1:1 for 10 groups; RAVDESS with 6 groups gives 16/4/4 actors)."""
    spk = _need_speakers(manifest, max(3, n_folds), "speaker_holdout")
    rng = np.random.default_rng(seed)
    order = rng.permutation(spk)
    groups = np.array_split(order, n_folds)
    g = _speakers(manifest)
    folds = []
    for i in range(n_folds):
        test_spk, valid_spk = set(groups[i]), set(groups[(i + 1) % n_folds])
        te = np.flatnonzero(np.isin(g, list(test_spk)))
        va = np.flatnonzero(np.isin(g, list(valid_spk)))
        tr = np.flatnonzero(~np.isin(g, list(test_spk | valid_spk)))
        folds.append(Fold(f"fold{i + 1}", tr, te, va))
    return folds


@register("emobox", None, "EmoBox benchmark partitions ({n} {folds})")
def emobox(manifest: pd.DataFrame, *, folds_csv: str, corpus: str | None = None, **_) -> list[Fold]:
    """Folds of an EmoBox-style partition file (columns ``corpus, fold, split, stem, label``).

    ``split`` is ``train`` or ``test`` (also ``valid`` / ``dev``, which become the fold's
    validation set); ``label`` is not used (labels come from the manifest). A row is matched to a
    manifest row by the key after ``"<corpus>/"`` (``03-01-05-01-02-01-18`` for RAVDESS,
    ``spk1/take3`` for a CSV corpus keyed by relative paths), else by the audio file's stem when
    that stem is unique in the corpus. More than 1 % unmatched rows in a fold is an error that
    says how many matched and shows examples from both sides.
    """
    path = Path(folds_csv)
    if not path.is_file():
        raise FileNotFoundError(f"EmoBox folds file not found: {path}")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    in_file = sorted(table["corpus"].unique()) if "corpus" in table.columns else []
    missing_cols = {"corpus", "fold", "split", "stem"} - set(table.columns)
    if missing_cols:
        raise ValueError(f"{path}: partition file lacks columns {sorted(missing_cols)} (needs "
                         "corpus, fold, split, stem[, label])")
    corpora = sorted(manifest["corpus"].unique())
    corpus = corpus or (corpora[0] if len(corpora) == 1 else None)
    if corpus is None:
        raise ValueError(f"emobox protocol needs one corpus; the manifest has {corpora}")
    table = table[table["corpus"] == corpus]
    if table.empty:
        raise ValueError(f"{path} has no folds for corpus {corpus!r} (it has {in_file}); its "
                         "`corpus` column must hold the manifest's corpus name")
    split = table["split"].str.strip().str.lower().replace({"dev": "valid", "validation": "valid"})
    unknown = sorted(set(split) - {"train", "test", "valid"})
    if unknown:
        raise ValueError(f"{path}: split values {unknown} for {corpus!r}; use train, test or valid")
    keys = manifest["key"].astype(str).to_numpy()
    prefix = f"{corpus}/"
    in_corpus = (manifest["corpus"] == corpus).to_numpy()
    by_key = {k[len(prefix):]: i for i, k in enumerate(keys) if in_corpus[i] and k.startswith(prefix)}
    paths = manifest["path"] if "path" in manifest.columns else pd.Series([""] * len(manifest))
    stems = pd.Series([Path(str(p)).stem for p in paths])[in_corpus]
    unique_stems = stems[~stems.duplicated(keep=False)]
    by_stem = dict(zip(unique_stems, unique_stems.index))
    ids = table["stem"].str.strip()
    row = [by_key.get(s, by_stem.get(s)) for s in ids]
    table = table.assign(_split=split, _row=row)
    folds = []
    for fold, part in table.groupby("fold", sort=True):
        unmatched = part.loc[part["_row"].isna(), "stem"].tolist()
        if len(unmatched) > 0.01 * len(part):
            n_key = sum(s in by_key for s in part["stem"])
            used = set(part["_row"].dropna().astype(int))
            spare = [keys[i] for i in sorted(by_key.values()) if i not in used][:3]
            raise ValueError(
                f"EmoBox fold {fold} of {corpus}: {len(part) - len(unmatched)} of {len(part)} "
                f"partition rows matched the manifest ({n_key} by key, "
                f"{len(part) - len(unmatched) - n_key} by file stem), {len(unmatched)} did not, "
                f"e.g. stems {unmatched[:3]}; manifest keys not in this fold look like {spare} "
                f"(rows are matched by the key after {prefix!r}, then by the file stem)")
        idx = {name: np.array(sorted(int(r) for r in part.loc[part["_split"] == name, "_row"]
                                     .dropna()), dtype=int)
               for name in ("train", "test", "valid")}
        folds.append(Fold(f"fold{fold}", idx["train"], idx["test"],
                          idx["valid"] if len(idx["valid"]) else None))
    return folds


#: ``protocol.classes`` of leave_corpus_out
CLASS_MODES = ("common", "shared")


def common_classes(manifest: pd.DataFrame) -> list[str]:
    """The labels every corpus of ``manifest`` has (sorted)."""
    per = [set(part["label"].astype(str)) for _, part in manifest.groupby("corpus", sort=True)]
    return sorted(set.intersection(*per)) if per else []


@register("leave_corpus_out", True,
          "leave-one-corpus-out ({n} {folds}: train on the other corpora, test on the held-out one; "
          "classes: {classes})")
def leave_corpus_out(manifest: pd.DataFrame, *, classes: str = "common", **_) -> list[Fold]:
    """One fold per corpus: train on every other corpus, test on that one (``heldout_<corpus>``).

    ``classes="common"``: only the labels every corpus has, in train and test (rows with other
    labels are left out of every fold). ``classes="shared"``: train on all the training corpora's
    rows; test on the held-out corpus's rows whose label the training set has. Held-out rows whose
    label the training set lacks are left out of that fold and counted in its record
    (``excluded_test``), so UA is over the classes the held-out corpus shares with the others.
    Each fold's ``record`` names ``heldout_corpus``, ``train_corpora`` and the fold's
    ``eval_classes``.
    """
    if classes not in CLASS_MODES:
        raise ValueError(f"leave_corpus_out: classes must be one of {list(CLASS_MODES)}, got {classes!r}")
    corpus = manifest["corpus"].astype(str).to_numpy()
    names = sorted(set(corpus))
    if len(names) < 2:
        raise ValueError(f"protocol 'leave_corpus_out' needs at least 2 corpora, the manifest has "
                         f"{len(names)} ({', '.join(names) or 'none'}): add corpora to data.corpora")
    y = manifest["label"].astype(str).to_numpy()
    keep = np.ones(len(y), dtype=bool)
    if classes == "common":
        common = common_classes(manifest)
        if len(common) < 2:
            have = {c: sorted(set(y[corpus == c])) for c in names}
            raise ValueError(f"leave_corpus_out (classes=common): the corpora share {len(common)} "
                             f"class(es) {common}; their classes are {have}. Use a common label set "
                             "(data.label_set: four) or protocol.classes=shared")
        keep = np.isin(y, common)
    folds = []
    for held in names:
        test_rows = corpus == held
        tr = np.flatnonzero(~test_rows & keep)
        train_classes = set(y[tr])
        te_all = np.flatnonzero(test_rows & keep)
        shared = np.isin(y[te_all], sorted(train_classes))
        te = te_all[shared]
        dropped = pd.Series(y[te_all[~shared]]).value_counts().sort_index()
        eval_classes = sorted(set(y[te]))
        if len(te) == 0:
            raise ValueError(f"leave_corpus_out: held-out corpus {held!r} shares no class with the "
                             f"other corpora (it has {sorted(set(y[test_rows]))}, they have "
                             f"{sorted(train_classes)})")
        folds.append(Fold(f"heldout_{held}", tr, te, record={
            "heldout_corpus": held, "train_corpora": [c for c in names if c != held],
            "class_mode": classes, "eval_classes": eval_classes,
            "train_classes": sorted(train_classes),
            "excluded_test": {str(k): int(v) for k, v in dropped.items()},
            "n_excluded_test": int(dropped.sum())}))
    return folds


@register("random", False, "speaker-dependent stratified random split ({n} {folds}) — same speakers "
                           "in train and test, accuracy is inflated")
def random_split(manifest: pd.DataFrame, *, n_folds: int = 1, test_size: float = 0.3,
                 seed: int = 42, **_) -> list[Fold]:
    y = manifest["label"].astype(str).to_numpy()
    if n_folds <= 1:
        from sklearn.model_selection import StratifiedShuffleSplit

        sss = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        tr, te = next(sss.split(np.zeros(len(y)), y))
        return [Fold("random", np.sort(tr), np.sort(te))]
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [Fold(f"fold{i + 1}", tr, te) for i, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y))]


def _overlap(manifest: pd.DataFrame, fold: Fold) -> set[str]:
    spk = _speakers(manifest)
    return set(spk[fold.test]) & set(spk[fold.train])


def check_speaker_overlap(manifest: pd.DataFrame, fold: Fold, speaker_dependent: bool) -> None:
    """Refuse a fold whose train (or valid) and test sets share a speaker, unless declared
    speaker-dependent."""
    if speaker_dependent:
        return
    spk = _speakers(manifest)
    test = set(spk[fold.test])
    for part, idx in (("train", fold.train), ("valid", fold.valid)):
        if idx is None:
            continue
        shared = test & set(spk[idx])
        if shared:
            raise SpeakerOverlapError(
                f"{fold.name}: speakers {sorted(shared)[:5]} are in both {part} and test; this "
                "protocol is declared speaker-independent")


def make_folds(manifest: pd.DataFrame, kind: str, *, speaker_dependent: bool = False,
               max_folds: int | None = None, **kwargs) -> tuple[list[Fold], ProtocolInfo]:
    """Build folds for ``kind`` and guard them. Returns the folds and a description of the protocol."""
    if kind not in SPLITS:
        raise ValueError(f"unknown protocol {kind!r}; choose one of {sorted(SPLITS)}")
    fn, independent, desc = SPLITS[kind]
    if independent is False and not speaker_dependent:
        raise SpeakerOverlapError(f"protocol {kind!r} is speaker-dependent; declare "
                                  "protocol.speaker_dependent=true to run it")
    folds = fn(manifest, **kwargs)
    for f in folds:
        if len(f.train) == 0 or len(f.test) == 0:
            raise ValueError(f"{kind} produced an empty train or test set in {f.name}")
    if independent is None:  # partitions from a file: decide from the data, never trust a label
        independent = not any(_overlap(manifest, f) for f in folds)
        if not independent:
            desc = desc + " — these partitions put the same speakers in train and test (speaker-dependent)"
            if not speaker_dependent:
                shared = _overlap(manifest, next(f for f in folds if _overlap(manifest, f)))
                raise SpeakerOverlapError(
                    f"the {kind} partitions of this corpus share speakers between train and test "
                    f"(e.g. {sorted(shared)[:4]}): use a speaker-independent protocol (group_kfold, "
                    "loso) or declare protocol.speaker_dependent=true to reproduce them as they are")
    for f in folds:
        check_speaker_overlap(manifest, f, speaker_dependent=not independent)
    if max_folds is not None:
        folds = folds[:max_folds]
    n = len(folds)
    fmt = {"classes": "common", **kwargs, "n": n, "folds": "fold" if n == 1 else "folds"}
    info = ProtocolInfo(kind, independent, desc.format(**fmt))
    return folds, info
