import numpy as np
import pytest

from serkit.evaluation import metrics as M


def test_hand_computed_ua_wa_f1():
    # 3 classes; a: 4 samples (3 right), b: 2 (1 right), c: 1 (1 right), one c-prediction wrong
    y_true = ["a", "a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "a", "b", "b", "c", "c"]
    m = M.compute(y_true, y_pred, ["a", "b", "c"])
    assert m["wa"] == pytest.approx(5 / 7)
    assert m["ua"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    # precision a=1, b=1/2, c=1/2; recall a=3/4, b=1/2, c=1
    f1 = [2 * 1 * .75 / 1.75, .5, 2 * .5 * 1 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["per_class"]["c"]["precision"] == pytest.approx(0.5)
    assert m["confusion"] == [[3, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_roc_auc_perfect_and_inverted():
    y = ["a", "a", "b", "b"]
    p = np.array([[.9, .1], [.8, .2], [.3, .7], [.1, .9]])
    assert M.compute(y, ["a", "a", "b", "b"], ["a", "b"], p)["roc_auc"]["macro"] == 1.0
    assert M.roc_auc_ovr(y, p[:, ::-1], ["a", "b"])["macro"] == 0.0


def test_aggregate_mean_std_over_folds():
    f1 = M.compute(["a", "b"], ["a", "b"], ["a", "b"])
    f2 = M.compute(["a", "b"], ["a", "a"], ["a", "b"])
    agg = M.aggregate([f1, f2], ["a", "b"])
    assert agg["ua"]["mean"] == pytest.approx(0.75) and agg["ua"]["std"] == pytest.approx(0.25)
    assert agg["confusion"] == [[2, 0], [1, 1]]
    assert agg["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
