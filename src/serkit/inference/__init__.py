"""The recogniser: model directories, the Predictor, long recordings, subtitles, batch prediction
(locally or on Ray).

Front ends (the CLI, ``serkit serve``) import what they need from here; names load on first use,
so ``import serkit.inference`` stays light.
"""
from __future__ import annotations

_EXPORTS = {
    "Predictor": "serkit.inference.predictor",
    "AudioError": "serkit.io.audio",
    "ModelError": "serkit.inference.modeldir",
    "NO_SPEECH_KINDS": "serkit.inference.predictor",
    "read_limited": "serkit.io.audio",
    "class_colors": "serkit.inference.modelcard",
    "card_summary": "serkit.inference.modelcard",
    "expand_inputs": "serkit.inference.inputs",
    "predict_paths": "serkit.inference.batch",
    "predict_on_ray": "serkit.inference.distributed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'serkit.inference' has no attribute {name!r}")
