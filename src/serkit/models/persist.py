"""Save and load fitted estimators without pickle.

An estimator folder holds ``estimator.json`` (format, kind, classes, the kind's spec) and either

* ``estimator.skops`` — scikit-learn estimators, loaded by :func:`skops.io.load` with the explicit
  list :data:`TRUSTED_TYPES` (anything else in the file is refused, nothing is executed), or
* ``weights.safetensors`` — torch models: the arrays of their ``export_state()``, rebuilt by the
  kind's loader class from :data:`LOADERS` (a plain table) from the spec and the arrays alone.

``GroupedGridSearch`` is saved as its refitted best estimator (the chosen parameters go into the
spec). A temperature-scaled estimator (:mod:`serkit.models.calibration`) is saved as the model it
wraps plus ``"calibration": {"method": "temperature", "temperature": T}`` in ``estimator.json``, and
wrapped again on load. Loading never imports the training engine.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from serkit._lazy import resolve

__all__ = ["FORMAT", "LOADERS", "TRUSTED_TYPES", "UnsafeModelError", "load_estimator", "save_estimator"]

FORMAT = {"name": "serkit-estimator", "version": 1}

#: kind -> "module:Class" with ``from_export_state(spec, arrays)``
LOADERS: dict[str, str] = {
    "torch_network": "serkit.models.torch_network:TorchNetworkPredictor",
    "finetune": "serkit.models.nn.finetune_net:FineTunePredictor",
    "pretrained_ser": "serkit.models.pretrained_classifier:PretrainedSERClassifier",
}

#: the only types an ``estimator.skops`` file may contain beyond skops' own defaults
TRUSTED_TYPES: tuple[str, ...] = (
    "serkit.models.ssl_probe.LayerSelect",
    "serkit.models.ssl_probe.LayerEnsemble",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.preprocessing._label.LabelBinarizer",
    "numpy.random.mtrand.RandomState",
    "numpy.random._mt19937.MT19937",
    "numpy.random.RandomState",
    "builtins.slice",
    "collections.OrderedDict",
)


class UnsafeModelError(ValueError):
    """A model file contains something serkit will not load (it could execute code)."""


def _kind_of(est: Any) -> str:
    from serkit.models.nn.finetune_net import FineTunePredictor
    from serkit.models.torch_network import TorchNetworkPredictor

    if isinstance(est, TorchNetworkPredictor):
        return "torch_network"
    if isinstance(est, FineTunePredictor):
        return "finetune"
    if type(est).__name__ == "PretrainedSERClassifier":
        return "pretrained_ser"
    return "sklearn"


def save_estimator(est: Any, folder: str | Path) -> Path:
    """Write a fitted estimator into ``folder`` (created); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"format": FORMAT}
    from serkit.models.calibration import TemperatureScaled

    if isinstance(est, TemperatureScaled):  # the temperature is a plain JSON number beside the model
        meta["calibration"] = {"method": "temperature", "temperature": est.temperature}
        est = est.estimator
    if hasattr(est, "best_estimator_") and hasattr(est, "best_params_"):  # GroupedGridSearch
        meta["best_params"] = {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
                               for k, v in est.best_params_.items()}
        est = est.best_estimator_
    kind = _kind_of(est)
    meta["kind"] = kind
    meta["classes"] = [str(c) for c in est.classes_]
    if kind == "sklearn":
        import skops.io as sio

        sio.dump(est, folder / "estimator.skops")
        meta["spec"] = {"class": f"{type(est).__module__}.{type(est).__qualname__}"}
    else:
        from safetensors.numpy import save_file

        spec, arrays = est.export_state()
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                  str(folder / "weights.safetensors"))
        meta["spec"] = spec
    (folder / "estimator.json").write_text(json.dumps(meta, indent=1))
    return folder


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "estimator.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a saved serkit estimator (no estimator.json)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    fmt = meta.get("format", {})
    if fmt.get("name") != FORMAT["name"] or fmt.get("version") != FORMAT["version"]:
        raise ValueError(f"{path}: unsupported estimator format {fmt!r} (this serkit reads {FORMAT})")
    return meta


def load_estimator(folder: str | Path) -> Any:
    """Load what :func:`save_estimator` wrote; never unpickles or runs code from the folder."""
    folder = Path(folder)
    meta = _read_meta(folder)
    kind = meta.get("kind")
    if kind == "sklearn":
        import skops.io as sio

        path = folder / "estimator.skops"
        untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
        if untrusted:
            raise UnsafeModelError(f"{path} contains types serkit does not trust: "
                                   f"{', '.join(sorted(untrusted))} (refusing to load it)")
        est = sio.load(path, trusted=list(TRUSTED_TYPES))
    elif kind in LOADERS:
        from safetensors.numpy import load_file

        arrays = load_file(str(folder / "weights.safetensors"))
        est = resolve(LOADERS[kind]).from_export_state(meta["spec"], arrays)
    else:
        raise ValueError(f"{folder}/estimator.json: unknown estimator kind {kind!r}")
    classes = [str(c) for c in getattr(est, "classes_", [])]
    if classes != meta["classes"]:
        raise ValueError(f"{folder}: classes in the weights {classes} differ from estimator.json "
                         f"{meta['classes']}")
    cal = meta.get("calibration")
    if cal is not None:
        try:
            if cal.get("method") != "temperature":
                raise ValueError(f"unknown calibration method {cal.get('method')!r}")
            from serkit.models.calibration import TemperatureScaled

            est = TemperatureScaled(est, float(cal["temperature"]))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{folder}/estimator.json: bad calibration entry {cal!r} ({exc})") from None
    return est
