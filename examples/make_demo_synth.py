"""Regenerate examples/demo_synth.opus: the demo recording serkit uses when neither the shared
corpora nor espeak-ng are available (speech synthesised with espeak-ng; no corpus audio).

    .venv/bin/python examples/make_demo_synth.py
"""
from pathlib import Path
import tempfile

import soundfile as sf

from serkit.cli.demo import _from_espeak

here = Path(__file__).resolve().parent
with tempfile.TemporaryDirectory() as tmp:
    got = _from_espeak(Path(tmp) / "synth.flac")
    if got is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    x, sr = sf.read(str(got[0]), dtype="float32")
    sf.write(str(here / "demo_synth.opus"), x, sr, format="OGG", subtype="OPUS")
print(here / "demo_synth.opus")
