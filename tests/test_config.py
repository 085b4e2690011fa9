import pytest
from pydantic import ValidationError

from serkit.config import RunConfig, apply_overrides, load_config


def test_defaults_live_in_the_config():
    cfg = RunConfig()
    assert cfg.protocol.kind == "group_kfold" and not cfg.protocol.speaker_dependent
    assert cfg.audio.sample_rate == 16000 and cfg.seed == 42


def test_yaml_and_dotted_overrides(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("name: x\nmodel: {name: svm, params: {C: 1}}\n")
    cfg = load_config(p, ["protocol.kind=loso", "model.params.C=10", "audio.duration_s=4",
                          "data.corpora=[{name: tess, root: /t}]", "features.metadata=[gender]"])
    assert cfg.protocol.kind == "loso" and cfg.model.params["C"] == 10
    assert cfg.audio.duration_s == 4.0 and cfg.data.corpora[0].name == "tess"
    assert cfg.features.metadata == ["gender"]


def test_unknown_keys_and_bad_values_are_rejected(tmp_path):
    with pytest.raises(ValidationError):
        load_config(None, ["protocol.knd=loso"])
    with pytest.raises(ValidationError):
        load_config(None, ["protocol.kind=whatever"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["nonsense"])


def test_random_protocol_must_be_declared_speaker_dependent():
    with pytest.raises(ValidationError, match="speaker_dependent"):
        load_config(None, ["protocol.kind=random"])
    assert load_config(None, ["protocol.kind=random", "protocol.speaker_dependent=true"])


def test_relative_corpus_roots_resolve_against_data_dir():
    cfg = load_config(None, ["data.data_dir=/data", "data.corpora=[{name: emodb, root: emodb}]"])
    assert str(cfg.data.corpus_roots()[0][1]) == "/data/emodb"
