"""openSMILE functionals (eGeMAPSv02, ComParE_2016) through the ``opensmile`` package."""
from __future__ import annotations

import numpy as np

from serkit.features.base import FeatureExtractor

_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}


class _Smile(FeatureExtractor):
    feature_set: str = "eGeMAPSv02"

    def __init__(self) -> None:
        self._smile = None

    def params(self):
        import opensmile

        return {"feature_set": self.feature_set, "opensmile": opensmile.__version__}

    def _get(self):
        if self._smile is None:
            import opensmile

            self._smile = opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                feature_level=opensmile.FeatureLevel.Functionals)
        return self._smile

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_smile"} | {"_smile": None}

    def feature_names(self):
        return list(self._get().feature_names)

    def __call__(self, signal: np.ndarray, sr: int) -> np.ndarray:
        return self._get().process_signal(signal, sr).to_numpy(dtype=np.float32).ravel()


class EGeMAPS(_Smile):
    """88 eGeMAPSv02 functionals."""

    name = "egemaps"

    feature_set = "eGeMAPSv02"


class ComParE(_Smile):
    """6373 ComParE_2016 functionals."""

    name = "compare"

    feature_set = "ComParE_2016"
