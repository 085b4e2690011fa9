"""Batch prediction on a Ray cluster: ``serkit predict --engine ray`` (needs ``serkit[distributed]``).

The file list becomes a Ray Dataset; ``map_batches`` sends it, ``files_per_batch`` files at a time,
to a fixed pool of actors (:class:`PredictorActor`), each of which loads the
:class:`~serkit.inference.predictor.Predictor` once and runs the same code as the local engine
(:func:`serkit.inference.batch.predict_paths`) on its batches. The driver streams the rows back
(in input order by default) into Parquet (:class:`serkit.inference.batch.ParquetSink`): one row per
file, or per file and segment with ``timeline``; failed files also go to ``OUT.failed.parquet``.
Nothing stops the run: an unreadable file gets an ``error`` row, an unexpected exception in one file
is caught and recorded (``kind`` ``internal``), and files of a block lost with a crashed worker are
recorded as failed (``kind`` ``worker_failed``).

>>> from serkit.inference.distributed import predict_on_ray
>>> predict_on_ray(["a.wav", "b.flac"], "results.parquet")       # a local Ray instance
>>> predict_on_ray(paths, "out.parquet", cfg=RayConfig(address="auto"))   # this node's cluster

Paths are made absolute on the driver before they are sent (the actors of a remote cluster do not
share its working directory); rows keep the path as given. On a multi-node cluster every node needs
serkit installed and the inputs (and a model directory, if one is used) at the same paths.
"""
from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serkit.config import InferenceConfig, RayConfig, SegmentConfig
from serkit.inference.batch import ParquetSink, predict_paths, results_table

__all__ = ["PredictorActor", "RaySummary", "predict_on_ray"]

_INDEX = "_i"


def _as_given(r: dict[str, Any], used: str, given: str) -> dict[str, Any]:
    """A result for the absolute path ``used``, named as the user gave it."""
    r = dict(r)
    r["path"] = given
    if used != given:
        for k in ("error", "note"):
            if isinstance(r.get(k), str):
                r[k] = r[k].replace(used, given)
    return r


class PredictorActor:
    """A Ray Data actor: loads the model once, then predicts batches of files (Arrow tables out)."""

    def __init__(self, model: str | None, segments: dict[str, Any], timeline: bool, batch_size: int,
                 cpus: float, inference: dict[str, Any] | None = None):
        from serkit.inference.predictor import Predictor

        self.timeline, self.batch_size = timeline, batch_size
        settings = InferenceConfig.model_validate({**(inference or {}), "threads": max(1, int(cpus))})
        self.predictor = Predictor.load(model, segments=SegmentConfig.model_validate(segments),
                                        inference=settings)

    def _predict(self, paths: list[str]) -> list[dict[str, Any]]:
        return predict_paths(self.predictor, paths, timeline=self.timeline, batch_size=self.batch_size)

    def _one(self, path: str) -> dict[str, Any]:
        try:
            return self._predict([path])[0]
        except Exception as exc:  # noqa: BLE001 - one file must not stop the run; it is reported
            return {"path": path, "error": f"{path}: {type(exc).__name__}: {exc}", "kind": "internal"}

    def __call__(self, batch: dict[str, Any]):
        given = [str(p) for p in batch["path"]]
        used = [str(p) for p in batch["abspath"]]
        try:
            results = self._predict(used)
        except Exception:  # noqa: BLE001 - find the file that raised, keep the others
            results = [self._one(p) for p in used]
        results = [_as_given(r, u, g) for r, u, g in zip(results, used, given)]
        return results_table(results, self.predictor.classes, self.timeline,
                             extra={_INDEX: [int(i) for i in batch[_INDEX]]})


@dataclass
class RaySummary:
    """What :func:`predict_on_ray` wrote."""

    out: Path
    failed_out: Path
    files: int
    rows: int
    failed: int
    lost: int
    actors: int
    seconds: float


def _model_arg(model: str | Path | None) -> tuple[str | None, list[str]]:
    """What to send to the actors (a name, or an absolute model directory) and the model's classes
    (from its card: a bad model is reported before Ray starts)."""
    from serkit.inference.modeldir import read_card, resolve_model

    model_dir = resolve_model(model)
    classes = [str(c) for c in read_card(model_dir)["classes"]]
    if model is not None and Path(model).exists():
        return str(Path(model).resolve()), classes
    return (None if model is None else str(model)), classes


class _DropNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Progress bars disabled")


def _quiet_progress_notice() -> None:
    """Ray Data says its progress bars are off (serkit shows its own): keep that line off the console."""
    log = logging.getLogger("ray.data._internal.progress")
    if not any(isinstance(f, _DropNotice) for f in log.filters):
        log.addFilter(_DropNotice())


def _connect(cfg: RayConfig) -> bool:
    """Join ``cfg.address`` (or $RAY_ADDRESS), else start a local instance; True when serkit started
    (and must stop) Ray."""
    import ray

    if ray.is_initialized():
        return False
    # Ray's start-up notes and the workers' output stay in Ray's logs (/tmp/ray/session_latest/logs;
    # a file's problem is in its row); Ray Data's warnings (e.g. actors waiting for resources) and
    # errors still reach the console
    kw: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if cfg.address is None and not os.environ.get("RAY_ADDRESS"):
        kw.update(include_dashboard=False, num_cpus=cfg.num_cpus)
    ray.init(address=cfg.address, **kw)
    return True


def predict_on_ray(paths: Sequence[str | Path], out: str | Path, *, model: str | Path | None = None,
                   segments: SegmentConfig | None = None, timeline: bool = False, batch_size: int = 16,
                   cfg: RayConfig | None = None, inference: InferenceConfig | None = None,
                   progress: Callable[[int], None] | None = None) -> RaySummary:
    """Predict ``paths`` on Ray and write ``out`` (Parquet) and its ``.failed.parquet`` table.

    ``batch_size`` clips are scored together inside an actor (as ``predict_files``); each actor
    loads the model with ``inference`` (runtime, precision; its threads = ``cpus_per_actor``);
    ``progress(n)`` is called on the driver as ``n`` more files are written."""
    import ray
    import ray.data

    cfg = cfg or RayConfig()
    segments = segments or SegmentConfig()
    paths = [str(p) for p in paths]
    model_arg, classes = _model_arg(model)
    inference = inference or InferenceConfig()
    from serkit.inference.modeldir import resolve_model
    from serkit.inference.runtime import choose_model_dir

    choose_model_dir(resolve_model(model), inference.runtime)   # a one-time ONNX export happens here, once
    t0 = time.perf_counter()
    started = _connect(cfg)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = cfg.preserve_order
        ctx.enable_progress_bars = False          # the caller shows one bar for the whole run
        ctx.print_on_execution_start = False
        ctx.max_errored_blocks = -1               # files of a lost block are reported, not fatal
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        _quiet_progress_notice()
        n_batches = max(1, math.ceil(len(paths) / cfg.files_per_batch))
        actors = cfg.actors or max(1, int(ray.cluster_resources().get("CPU", 1) // cfg.cpus_per_actor))
        actors = min(actors, n_batches)
        ds = ray.data.from_items([{_INDEX: i, "path": p, "abspath": os.path.abspath(p)}
                                  for i, p in enumerate(paths)])
        ds = ds.map_batches(
            PredictorActor, batch_size=cfg.files_per_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cfg.cpus_per_actor,
            fn_constructor_kwargs={"model": model_arg, "segments": segments.model_dump(),
                                   "timeline": timeline, "batch_size": batch_size,
                                   "cpus": cfg.cpus_per_actor, "inference": inference.model_dump()})
        seen: set[int] = set()
        with ParquetSink(out, classes, timeline) as sink:
            for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                sink.write(table)
                before = len(seen)
                seen.update(int(i) for i in table[_INDEX].to_pylist())
                if progress and len(seen) > before:
                    progress(len(seen) - before)
            lost = [i for i in range(len(paths)) if i not in seen]
            if lost:
                sink.write(results_table(
                    [{"path": paths[i], "kind": "worker_failed",
                      "error": f"{paths[i]}: the Ray worker predicting it failed (see the Ray logs)"}
                     for i in lost], classes, timeline))
                if progress:
                    progress(len(lost))
    finally:
        if started:
            ray.shutdown()
    return RaySummary(out=sink.out, failed_out=sink.failed_out, files=sink.files, rows=sink.rows,
                      failed=sink.failed, lost=len(lost), actors=actors,
                      seconds=time.perf_counter() - t0)
