"""Corpus adapters: one per corpus, all producing the manifest of :mod:`serkit.corpora.manifest`.

>>> result = load_corpus("ravdess", "../shared/datasets/ravdess", label_set="ekman7")
>>> result.manifest.head(), result.problems

:data:`CORPORA` maps a corpus name to its adapter class (called with optional keyword arguments
to make an adapter). ``generic`` reads a user's own corpus (CSV or folder per label).
"""
from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .base import AUDIO_EXTENSIONS, CorpusAdapter, Excluded, FileProblem, Unparseable
from .cremad import CremadAdapter
from .emodb import EmodbAdapter
from .generic import SYNONYMS, GenericAdapter
from .iemocap import IemocapAdapter
from .manifest import (EMOTION_SYNONYMS, LabelOptions, Problem, ScanResult, canonical_emotion,
                       merge)
from .ravdess import RavdessAdapter
from .savee import SaveeAdapter
from .tess import TessAdapter

#: corpus name -> adapter factory
CORPORA: dict[str, Callable[..., CorpusAdapter]] = {
    "ravdess": RavdessAdapter,
    "cremad": CremadAdapter,
    "tess": TessAdapter,
    "savee": SaveeAdapter,
    "emodb": EmodbAdapter,
    "iemocap": IemocapAdapter,
    "generic": GenericAdapter,
    "csv": GenericAdapter,  # aliases: a CSV file (path,label,speaker[,gender]) ...
    "folder": GenericAdapter,  # ... or a folder per label
}

LabelOptionsLike = LabelOptions | Mapping[str, str] | None


def licence_of(name: str) -> str | None:
    """The distribution terms of a built-in corpus (None for csv / folder corpora)."""
    factory = CORPORA.get(name.lower())
    return getattr(factory, "licence", None) if factory is not None else None


def _options(label_options: LabelOptionsLike) -> LabelOptions | None:
    if label_options is None or isinstance(label_options, LabelOptions):
        return label_options
    known = {f.name for f in fields(LabelOptions)}
    unknown = set(label_options) - known
    if unknown:
        raise ValueError(f"unknown label options {sorted(unknown)}; known: {sorted(known)}")
    return LabelOptions(**dict(label_options))


def adapter_options(name: str) -> list[str]:
    """The options (constructor keyword arguments) the adapter ``name`` takes."""
    try:
        factory = CORPORA[name.lower()]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; choose one of {sorted(CORPORA)}") from None
    params = inspect.signature(factory).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def get_adapter(name: str, **kwargs: Any) -> CorpusAdapter:
    """Make the adapter registered under ``name`` (keyword arguments go to its constructor).

    Raises ``ValueError`` naming the corpus and the options it takes when given others.
    """
    takes = adapter_options(name)
    unknown = sorted(set(kwargs) - set(takes))
    if unknown:
        raise ValueError(f"corpus {name!r} does not take the option(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(takes) if takes else 'no options'}")
    return CORPORA[name.lower()](**kwargs)


def load_corpus(name: str, root: str | Path, *, label_set: str = "native",
                label_options: LabelOptionsLike = None, check_readable: bool = False,
                check_duplicates: bool | str = True, **adapter_kwargs: Any) -> ScanResult:
    """Scan one corpus into a manifest.

    Parameters
    ----------
    name : str
        A key of :data:`CORPORA` (``ravdess``, ``cremad``, ``tess``, ``savee``, ``emodb``,
        ``iemocap``, ``generic``).
    root : path
        Corpus folder (``generic``: a folder or a CSV file).
    label_set : str
        ``native``, ``ekman7`` or ``four``.
    label_options : LabelOptions or mapping, optional
        e.g. ``{"calm": "neutral"}``.
    check_readable : bool
        Decode each file fully instead of reading only its header (slow).
    check_duplicates : bool or str
        Report files with identical audio as ``Problem(kind="duplicate")``; ``True`` means
        ``"both"`` (bytes or decoded samples), see :func:`serkit.corpora.scan.find_duplicates`.
    **adapter_kwargs
        Passed to the adapter (``csv`` / ``folder`` / ``generic``: ``corpus``, ``speaker_regex``,
        ``key_column``, ``base_dir``; ``cremad``: ``demographics``); see :func:`adapter_options`.

    Returns
    -------
    ScanResult
    """
    try:
        adapter = get_adapter(name, **adapter_kwargs)
    except ValueError as exc:
        raise ValueError(f"{exc} (corpus at {root})") from None
    return adapter.scan(root, label_set=label_set, label_options=_options(label_options),
                        check_readable=check_readable, check_duplicates=check_duplicates)


def load_corpora(specs: Sequence[tuple[str, str | Path]], *, label_set: str = "native",
                 label_options: LabelOptionsLike = None, check_readable: bool = False,
                 check_duplicates: bool | str = True) -> ScanResult:
    """Scan several corpora and merge them into one manifest (problems concatenated).

    ``specs`` holds ``(name, root)`` pairs, or ``(name, root, adapter_kwargs)`` triples.
    Raises ``ValueError`` if the merged keys are not unique (e.g. one corpus given twice).
    """
    if not specs:
        raise ValueError("no corpora given")
    results = []
    for spec in specs:
        name, root, *rest = spec
        kwargs = dict(rest[0]) if rest else {}
        results.append(load_corpus(name, root, label_set=label_set, label_options=label_options,
                                   check_readable=check_readable,
                                   check_duplicates=check_duplicates, **kwargs))
    excluded: dict[str, int] = {}
    for r in results:
        corpus = r.corpus or (r.manifest["corpus"].iloc[0] if len(r.manifest) else "?")
        for reason, n in r.excluded.items():
            excluded[f"{corpus}: {reason}"] = excluded.get(f"{corpus}: {reason}", 0) + n
    return ScanResult(merge(r.manifest for r in results),
                      [p for r in results for p in r.problems], excluded,
                      corpus="+".join(r.corpus for r in results if r.corpus))


__all__ = [
    "AUDIO_EXTENSIONS", "CORPORA", "CorpusAdapter", "CremadAdapter", "EMOTION_SYNONYMS",
    "EmodbAdapter", "Excluded",
    "FileProblem", "GenericAdapter", "IemocapAdapter", "LabelOptions", "Problem",
    "RavdessAdapter", "SYNONYMS", "SaveeAdapter", "ScanResult", "TessAdapter", "Unparseable",
    "adapter_options", "canonical_emotion", "get_adapter", "licence_of", "load_corpora", "load_corpus",
]
