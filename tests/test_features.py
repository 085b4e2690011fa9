import numpy as np
import pandas as pd
import pytest

from serkit.features.base import make_extractor
from serkit.features.extract import extract_manifest
from audio_utils import tone, write


@pytest.mark.parametrize("kind,params,shape", [
    ("handcrafted", {"tonnetz": False}, (81,)),
    ("egemaps", {}, (88,)),
    ("mfcc", {"frames": 216, "hop_length": 296}, (41, 216)),
    ("logmel", {"frames": 126}, (128, 126)),
    ("melimage", {}, (128, 128)),
])
def test_extractor_shapes(kind, params, shape):
    x = tone(200, 1.5)
    f = make_extractor(kind, params)(x, 16000)
    assert f.shape == shape and np.isfinite(f).all()


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown feature kind"):
        make_extractor("nope")


def test_cache_hits_and_bad_files_are_reported_not_raised(tmp_path):
    paths = [write(tmp_path / f"a{i}.wav", tone(200 + 50 * i, 0.5)) for i in range(3)]
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    m = pd.DataFrame({"path": [str(p) for p in paths] + [str(bad)]})
    ext = make_extractor("mfcc", {"frames": 20})
    r1 = extract_manifest(m, ext, {"sample_rate": 16000}, cache_dir=str(tmp_path / "c"), n_jobs=1,
                          progress=False)
    assert r1.features.shape == (3, 41, 20) and list(r1.ok) == [True, True, True, False]
    assert r1.failures[0]["path"] == str(bad) and "bad.wav" in r1.failures[0]["error"]
    r2 = extract_manifest(m, ext, {"sample_rate": 16000}, cache_dir=str(tmp_path / "c"), n_jobs=1,
                          progress=False)
    assert r2.cached == 3
    np.testing.assert_array_equal(r1.features, r2.features)
    # different audio parameters → a different cache entry
    r3 = extract_manifest(m, ext, {"sample_rate": 16000, "offset_s": 0.1},
                          cache_dir=str(tmp_path / "c"), n_jobs=1, progress=False)
    assert r3.cached == 0
