"""Resolve ``"package.module:attribute"`` strings: the registries are plain tables of such strings,
so listing what serkit knows imports nothing heavy (torch, opensmile) and nothing registers itself."""
from __future__ import annotations

import importlib
from typing import Any


def resolve(spec: str) -> Any:
    """The object named by ``"module:attr"`` (``attr`` may be dotted)."""
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
