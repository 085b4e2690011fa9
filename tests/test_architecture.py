"""The import contract, the plain registries and a light command line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from serkit.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_import_contract_is_kept():
    """Layers (cli/serve → evaluation/inference → models/features → io/corpora/backbones → config)
    and inference never importing training / evaluation / reporting (pyproject.toml)."""
    lint = Path(sys.executable).parent / "lint-imports"
    res = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_listing_and_help_import_no_heavy_libraries():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom serkit.cli import app\n"
            "r = CliRunner().invoke(app, ['list'])\nassert r.exit_code == 0, r.output\n"
            "assert 'cnn4' in r.output and 'ssl_probe' in r.output and 'egemaps' in r.output, r.output\n"
            "print(sorted(m for m in ('torch', 'opensmile', 'transformers', 'lightning', 'sklearn') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_version():
    from serkit import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"serkit {__version__}"


def test_registries_are_plain_tables_that_resolve():
    from serkit._lazy import resolve
    from serkit.features.base import FEATURES, make_extractor
    from serkit.models.nn.registry import NETWORKS
    from serkit.models.registry import MODELS, available, make_model

    assert all(isinstance(v, str) and ":" in v for v in [*FEATURES.values(), *MODELS.values()])
    assert all(isinstance(e.factory, str) for e in NETWORKS.values())
    for kind in FEATURES:
        assert callable(resolve(FEATURES[kind]))
    assert make_extractor("mfcc").name == "mfcc"
    for name in available():  # every listed model builds (head_* included: static table)
        est = make_model(name, {}, 0)
        assert hasattr(est, "fit") and hasattr(est, "predict_proba"), name


def test_demo_config_ships_inside_the_package():
    from importlib.resources import files

    from serkit.config import load_config

    cfg = load_config(Path(str(files("serkit.resources") / "demo_emodb.yaml")))
    assert cfg.features.kind == "egemaps" and cfg.features.test_time_speaker_norm is False
