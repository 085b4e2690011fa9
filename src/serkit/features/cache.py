"""Disk cache of per-file features keyed by (audio content, audio params, extractor params)."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np


def default_cache_dir() -> Path:
    base = os.environ.get("SERKIT_CACHE")
    return Path(base) / "features" if base else Path.home() / ".cache" / "serkit" / "features"


def params_hash(params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=10).hexdigest()


def file_hash(path: str | Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ContentHashIndex:
    """Remembers the content hash of a file by (path, size, mtime) so files are hashed once."""

    def __init__(self, root: Path):
        self.path = root / "content_index.json"
        self._lock = threading.Lock()
        try:
            self._data: dict[str, str] = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self._data = {}
        self._dirty = False

    def get(self, path: str | Path) -> str:
        p = Path(path)
        st = p.stat()
        k = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        with self._lock:
            if k in self._data:
                return self._data[k]
        h = file_hash(p)
        with self._lock:
            self._data[k] = h
            self._dirty = True
        return h

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._data))
        tmp.replace(self.path)
        self._dirty = False


class FeatureCache:
    """``<root>/<params hash>/<content hash>.npy`` with a ``params.json`` describing the folder."""

    def __init__(self, root: str | Path | None, params: dict[str, Any]):
        self.root = Path(root) if root else default_cache_dir()
        self.dir = self.root / params_hash(params)
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "params.json"
        if not meta.exists():
            meta.write_text(json.dumps(params, sort_keys=True, indent=1, default=str))
        self.index = ContentHashIndex(self.root)

    def __getstate__(self):  # workers only load/store; the hash index stays in the parent
        return {k: v for k, v in self.__dict__.items() if k != "index"}

    def key_for(self, path: str | Path) -> str:
        return self.index.get(path)

    def _file(self, key: str) -> Path:
        return self.dir / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        f = self._file(key)
        if not f.exists():
            return None
        try:
            return np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None  # torn write: recompute

    def store(self, key: str, value: np.ndarray) -> None:
        f = self._file(key)
        tmp = f.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
        np.save(tmp, value, allow_pickle=False)
        tmp.replace(f)
