"""serkit: speech emotion recognition with honest, speaker-independent evaluation.

``from serkit import Predictor`` gives the recogniser (:mod:`serkit.inference.predictor`).
"""
__version__ = "0.1.0"

__all__ = ["Predictor", "__version__"]


def __getattr__(name: str):  # the recogniser loads on first use: `import serkit` stays light
    if name == "Predictor":
        from serkit.inference.predictor import Predictor

        return Predictor
    raise AttributeError(name)
