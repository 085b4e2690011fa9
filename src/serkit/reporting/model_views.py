"""Report sections that look inside the fold models: training curves, embedding maps,
activations, attention pooling weights and Grad-CAM maps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import html as H
from . import plots, plots_model
from .analysis import embedding_maps
from .artifacts import read_attention, read_embeddings, read_gradcam, read_history
from .context import ReportContext
from .run import fold_name

__all__ = ["MAX_EMBED_POINTS", "MAX_GRADCAM", "MAX_ATTENTION", "training_section", "embedding_sections", "attention_section", "gradcam_section"]

MAX_EMBED_POINTS = 2000
MAX_GRADCAM = 12
MAX_ATTENTION = 8


def training_section(ctx: ReportContext) -> str:
    curves = read_history(ctx.run)
    if curves is None:
        return H.note("No training curves: no folds/*/history.csv (models without epochs, e.g. classical ones).")
    return ctx.fig(
        plots.training_curves(curves),
        "training and validation loss and accuracy per epoch",
        "Loss and accuracy per epoch: solid lines training, dashed validation; one colour per fold.",
        [ctx.csv("curves.csv", curves)],
    )


def embedding_sections(ctx: ReportContext) -> tuple[str, str]:
    """(embedding maps html, activation analysis html)."""
    run = ctx.run
    loaded, notes = read_embeddings(run)
    skipped = "".join(H.note(n) for n in notes)
    if loaded is None:
        msg = "No embeddings: no readable folds/*/embeddings.npz."
        return skipped + H.note(msg), H.note(msg)
    fold, emb, true, pred = loaded.fold, loaded.embedding, loaded.true, loaded.pred
    n, d = emb.shape
    classes = [c for c in run.classes if c in set(true) | set(pred)] or sorted(set(true) | set(pred))
    n_folds_emb = sum((p / "embeddings.npz").is_file() for p in run.fold_dirs.values())
    rng = np.random.default_rng(ctx.seed)
    idx = np.sort(rng.choice(n, MAX_EMBED_POINTS, replace=False)) if n > MAX_EMBED_POINTS else np.arange(n)
    base = pd.DataFrame({"fold": fold, "key": loaded.keys[idx], "true": true[idx], "pred": pred[idx]})
    where = (
        f"Test utterances of {fold_name(fold)} ({len(idx)} of {n}"
        + (", random subsample" if len(idx) < n else "")
        + f"; {d}-dimensional embeddings)."
        + (f" Only this fold is shown: each of the {n_folds_emb} fold models has its own embedding space." if n_folds_emb > 1 else "")
        + loaded.note
    )
    out = [skipped, H.note(where)]
    maps = embedding_maps(np.nan_to_num(emb[idx]), ctx.seed, ctx.tsne)
    if "pca" in maps:
        xy, ev = maps["pca"]
        out.append(
            ctx.fig(
                plots_model.embedding_scatter(xy, true[idx], pred[idx], classes, "PCA",
                                        (f"PC 1 ({ev[0]:.1f} % variance)", f"PC 2 ({ev[1]:.1f} % variance)")),
                "PCA of embeddings coloured by true and predicted label",
                "PCA of the embeddings; left coloured by true label, right by predicted label (black rings: misclassified).",
                [ctx.csv("pca.csv", base.assign(pc1=xy[:, 0], pc2=xy[:, 1]))],
            )
        )
    else:
        out.append(H.note("Too few points or dimensions for PCA."))
    if "tsne" in maps:
        xy, perplexity = maps["tsne"]
        out.append(
            ctx.fig(
                plots_model.embedding_scatter(xy, true[idx], pred[idx], classes, "t-SNE", ("t-SNE 1", "t-SNE 2")),
                "t-SNE of embeddings coloured by true and predicted label",
                f"t-SNE (perplexity {perplexity:.0f}) of the embeddings; left coloured by true label, right by predicted label.",
                [ctx.csv("tsne.csv", base.assign(x=xy[:, 0], y=xy[:, 1]))],
            )
        )
    else:
        out.append(H.note("t-SNE not computed (disabled)." if not ctx.tsne else "Too few points for t-SNE."))
    return "".join(out), _activations(ctx, fold, emb, true, classes)


def _activations(ctx: ReportContext, fold: str, emb: np.ndarray, true: np.ndarray, classes: list[str]) -> str:
    """Activation heat-map and feature variance (study 003), on all test utterances of the fold."""
    d = emb.shape[1]
    act = []
    labs = [c for c in classes if (true == c).any()]
    mean_abs = np.vstack([np.abs(emb[true == c]).mean(axis=0) for c in labs]) if labs else np.zeros((0, d))
    act_df = pd.DataFrame(mean_abs, index=pd.Index(labs, name="class"), columns=[f"dim_{i}" for i in range(d)])
    links = [ctx.csv("activation.csv", act_df, index=True)]
    if labs:
        if d > 256:
            dims = np.sort(np.argsort(mean_abs.std(axis=0))[::-1][:128])
            sub = f"\n(the 128 of {d} dimensions whose class means differ most)"
        else:
            dims, sub = np.arange(d), ""
        act.append(
            ctx.fig(
                plots_model.activation_heatmap(mean_abs[:, dims], labs, dims.tolist(), sub),
                "heat-map of mean absolute activation per class and dimension",
                f"Mean |activation| of each embedding dimension per true class, {fold_name(fold)}.",
                links,
            )
        )
    var = emb.var(axis=0)
    flat = var.size > 1 and var.max() > 0 and (var.max() - var.min()) / var.max() < 0.01
    act.append(
        ctx.fig(
            plots_model.feature_variance(var),
            "variance of each embedding dimension",
            f"Variance of each embedding dimension over the test utterances of {fold_name(fold)}."
            + (" All dimensions have the same variance: these embeddings look standardised." if flat else ""),
            [ctx.csv("feature_variance.csv", pd.DataFrame({"dimension": np.arange(d), "variance": var}))],
        )
    )
    return "".join(act)


def attention_section(ctx: ReportContext) -> str:
    items, problems = [], []
    for fold, d in ctx.run.fold_dirs.items():
        p = d / "attention.npz"
        if not p.is_file():
            continue
        att = read_attention(p)
        if att.error:
            problems.append(att.error)
            continue
        seen = {it["label"] for it in items}
        for k, w, lab in zip(att.keys, att.weights, att.labels):  # one example per class first
            if lab not in seen and len(items) < MAX_ATTENTION:
                items.append({"fold": fold, "key": k, "label": lab, "weights": w})
                seen.add(lab)
        if len(items) >= MAX_ATTENTION:
            break
    notes = "".join(H.warning(m) for m in problems)
    if not items:
        if problems:
            return notes + H.note("Attention weights not shown: no attention file could be read safely.")
        return H.note("No attention weights: no folds/*/attention.npz (model without attention pooling).")
    order = {c: i for i, c in enumerate(ctx.run.classes)}
    items.sort(key=lambda it: order.get(it["label"], len(order)))
    rows = [
        pd.DataFrame({"fold": it["fold"], "key": it["key"], "label": it["label"], "frame": np.arange(len(it["weights"])), "weight": it["weights"]})
        for it in items
    ]
    return notes + ctx.fig(
        plots_model.attention_weights(items),
        "attention pooling weights over time for example utterances",
        "Attention-pooling weights α over frames for one example utterance per class; dotted line: uniform weight.",
        [ctx.csv("attention.csv", pd.concat(rows, ignore_index=True))],
    )


def gradcam_section(ctx: ReportContext) -> str:
    items, pngs, rows, notes = read_gradcam(ctx.run, MAX_GRADCAM)
    out = [H.note(n) for n in notes]
    if not items and not pngs:
        return "".join(out) + H.note("No Grad-CAM maps: no folds/*/gradcam/ (not a convolutional model, or not requested).")
    links = [ctx.csv("gradcam.csv", pd.DataFrame(rows))]
    if items:
        out.append(
            ctx.fig(
                plots_model.gradcam_gallery(items),
                "Grad-CAM maps over input spectrograms",
                "Grad-CAM maps (colour, red = most relevant) over the input features (grey); red titles are misclassified.",
                links,
            )
        )
    if pngs:
        figs = []
        for fold, p in pngs:
            ctx.n_images += 1
            figs.append(H.figure(plots.png_data_uri(p.read_bytes()), f"Grad-CAM image {p.stem}", f"{fold_name(fold)}: {p.name}"))
        out.append('<div class="gallery">' + "".join(figs) + "</div>")
    return "".join(out)
