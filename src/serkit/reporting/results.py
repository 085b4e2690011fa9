"""Report sections on the scores: metrics per fold, per-class results, confusion matrix,
ROC and precision–recall curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import analysis as A
from . import html as H
from . import plots
from .colors import colors_for
from .context import ReportContext, pct, pm
from .run import fold_name

__all__ = ["calibration_section", "metrics_section", "per_class_section", "confusion_section", "roc_pr_section"]


def metrics_section(ctx: ReportContext, summary: dict) -> str:
    run = ctx.run
    per_fold = A.per_fold(run)
    transductive = summary["transductive"] is True
    rows, classes = [], []
    for _, r in per_fold.iterrows():
        rows.append([fold_name(r["fold"]), "" if pd.isna(r["n"]) else int(r["n"]), pct(r["ua"]), pct(r["wa"]),
                     pct(r["macro_f1"]), r["missing_classes"], r["missing_train_classes"]])
        classes.append("")
    n_total = int(per_fold["n"].sum()) if len(per_fold) and per_fold["n"].notna().all() else ""
    rows.append([
        "mean ± std over folds" + (" (transductive)" if transductive else ""),
        n_total,
        pm(summary["ua"], summary["ua_std"]),
        pm(summary["wa"], summary["wa_std"]),
        pm(summary["macro_f1"], summary["macro_f1_std"]),
        "",
        "",
    ])
    classes.append("summary")
    header = ["", "test utterances", "UA (%)", "WA (%)", "macro-F1 (%)", "classes missing from test", "classes missing from training"]
    out = [H.table(header, rows, text_cols=(0, 5, 6), row_classes=classes)]
    if run.missing_classes_note:
        out.append(H.warning(run.missing_classes_note))
    out.append(
        H.note(
            "UA: unweighted accuracy (mean of per-class recall over the classes in the fold's test set). "
            "WA: weighted accuracy (overall accuracy). Per-fold values are recomputed from predictions.csv; "
            "the summary row is taken from metrics.json."
            + (" All scores are transductive (test speakers' own clips normalised their features)." if transductive else "")
        )
    )
    if len(per_fold) and per_fold["ua"].notna().any() and summary["ua"] == summary["ua"]:
        recomputed = float(np.nanmean(per_fold["ua"]))
        if abs(recomputed - summary["ua"]) > 0.005:
            out.append(H.warning(f"metrics.json records UA {pct(summary['ua'])} % but predictions.csv gives a fold mean of {pct(recomputed)} %."))
    pub = summary["published"]
    if isinstance(pub, dict) and pub.get("value") is not None:
        out.append(
            H.note(
                f"Published figure: {pub.get('metric', 'score')} {pub.get('value')} % under "
                f"“{pub.get('protocol', 'the authors’ protocol')}” ({pub.get('source', 'source not recorded')}). "
                "Not directly comparable when the protocols differ."
            )
        )
    links = [ctx.csv("per_fold.csv", per_fold)]
    if len(per_fold) > 1:
        out.append(ctx.fig(plots.fold_metrics(per_fold), "bar chart of UA, WA and macro-F1 per fold",
                           "Scores per fold" + (" (transductive)." if transductive else "."), links))
    return "".join(out)


def per_class_section(ctx: ReportContext, pooled: pd.DataFrame | None, per_fold_class: pd.DataFrame | None, roc: dict, pr: dict) -> str:
    if pooled is None or pooled.empty:
        return H.note("No per-class results: predictions.csv (true, pred) and metrics.json per_class are both absent.")
    cmap = colors_for(pooled["class"])
    pooled = pooled.copy()
    pooled["auc"] = [roc[c][2] if c in roc else np.nan for c in pooled["class"]]
    pooled["average_precision"] = [pr[c][2] if c in pr else np.nan for c in pooled["class"]]
    rows = [
        [
            f"{H.swatch(cmap[r['class']])}{H.esc(r['class'])}",
            pct(r["precision"], 1),
            pct(r["recall"], 1),
            pct(r["f1"], 1),
            "" if pd.isna(r["support"]) else int(r["support"]),
            "–" if pd.isna(r["auc"]) else f"{r['auc']:.3f}",
            "–" if pd.isna(r["average_precision"]) else f"{r['average_precision']:.3f}",
        ]
        for _, r in pooled.iterrows()
    ]
    out = [H.table(["class", "precision (%)", "recall (%)", "F1 (%)", "support", "ROC AUC", "average precision"], rows, raw_cols=(0,))]
    out.append(
        ctx.fig(
            plots.per_class_bars(pooled),
            "grouped bar chart of per-class precision, recall and F1",
            "Per-class precision, recall and F1, pooled over folds; bar colour is the emotion, shade and hatch the metric.",
            [ctx.csv("per_class.csv", pooled)],
        )
    )
    if per_fold_class is not None and not per_fold_class.empty and per_fold_class["fold"].nunique() > 1:
        classes = [c for c in pooled["class"] if c in set(per_fold_class["class"])]
        out.append(
            ctx.fig(
                plots.per_class_f1_boxplot(per_fold_class, classes),
                "box plot of per-class F1 across folds",
                "Per-class F1 across folds (folds where the class has test utterances).",
                [ctx.csv("per_class_folds.csv", per_fold_class)],
            )
        )
    return "".join(out)


def confusion_section(ctx: ReportContext) -> str:
    classes = ctx.run.classes
    cm, source = A.confusion(ctx.run)
    if cm is None:
        return H.note(source)
    counts = pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=classes)
    totals = counts.sum(axis=1).to_numpy(dtype=float)[:, None]
    norm = pd.DataFrame(np.divide(cm, totals, out=np.zeros_like(cm, dtype=float), where=totals > 0), index=counts.index, columns=classes)
    links = [ctx.csv("confusion.csv", counts, index=True), ctx.csv("confusion_normalized.csv", norm, index=True)]
    return ctx.fig(
        plots.confusion(cm, classes),
        "confusion matrices, counts and row-normalised",
        f"Confusion matrix {source}: rows are true labels, columns predicted labels; right, each row divided by its total (recall on the diagonal).",
        links,
    )


def roc_pr_section(ctx: ReportContext, roc: dict, pr: dict, roc_df, pr_df) -> str:
    if not roc:
        return H.note("No ROC / precision–recall curves: predictions.csv has no prob_<class> columns.")
    macro = np.mean([v[2] for v in roc.values()])
    return H.note(f"Macro-average one-vs-rest AUC: {macro:.3f} over {len(roc)} classes.") + ctx.fig(
        plots.roc_pr_curves(roc, pr, ctx.run.classes),
        "one-vs-rest ROC curves and precision-recall curves per class",
        "Left: one-vs-rest ROC curves with area under the curve (AUC). Right: precision–recall curves with "
        "average precision (AP); dotted lines are each class's prevalence (chance level). "
        "Computed from the predicted probabilities, pooled over folds.",
        [ctx.csv("roc.csv", roc_df), ctx.csv("pr.csv", pr_df)],
    )


def calibration_section(ctx: ReportContext) -> str:
    per_fold, rel = A.calibration(ctx.run)
    if per_fold is None:
        return H.note("No calibration figures: predictions.csv has no prob_<class> columns.")
    scaled = per_fold["temperature"].notna().any()
    rows = []
    for _, r in per_fold.iterrows():
        row = [fold_name(r["fold"]), int(r["n"]), pct(r["ece"])]
        if scaled:
            row += ["–" if pd.isna(r["ece_uncalibrated"]) else pct(r["ece_uncalibrated"]),
                    "–" if pd.isna(r["temperature"]) else f"{r['temperature']:.3f}"]
        rows.append(row)
    mean = ["mean ± std over folds", int(per_fold["n"].sum()), pm(per_fold["ece"].mean(), per_fold["ece"].std(ddof=0))]
    if scaled:
        unc = per_fold["ece_uncalibrated"].astype(float)
        mean += [pm(unc.mean(), unc.std(ddof=0)), ""]
    rows.append(mean)
    header = ["", "test utterances", "ECE (%)"] + (["ECE before temperature scaling (%)", "temperature"] if scaled else [])
    out = [H.table(header, rows, text_cols=(0,), row_classes=[""] * (len(rows) - 1) + ["summary"])]
    out.append(H.note(
        "Expected calibration error: predictions are put into 15 equal-width bins of their top-class "
        "probability; ECE is the average over bins, weighted by their share of predictions, of "
        "|accuracy − mean confidence| (0 = the confidence is the chance of being right)."
        + (" The probabilities of this run are temperature-scaled: each fold's temperature was fitted "
           "on held-out speakers of its training part, never on its test fold; the labels are the same "
           "as before scaling." if scaled else "")))
    out.append(ctx.fig(plots.reliability_diagram(rel), "reliability diagram: accuracy against confidence per bin",
                       "Reliability diagram, pooled over folds: bars are the accuracy of the predictions in each "
                       "confidence bin; the hatched part is the gap to their mean confidence (below the diagonal: "
                       "over-confident). Below: predictions per bin.",
                       [ctx.csv("calibration_folds.csv", per_fold), ctx.json("reliability.json", rel)]))
    return "".join(out)
