"""PNG plots written beside the model (elbow, silhouette, PCA). Matplotlib is imported lazily."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from assistant.model.card import ModelCard

SEGMENT_COLOURS = {
    "casual_shoppers": "#4C78A8",
    "vip_customers": "#E45756",
    "browsers_without_conversion": "#767676",   # grey dark enough for 4.5:1 on white
    "digital_enthusiasts": "#54A24B",
}


def _save(fig: Figure, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_training_plots(card: ModelCard, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = card.selection
    ks = [r.k for r in table]
    written = {}

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ks, [r.inertia for r in table], marker="o", color="#4C78A8")
    elbow = card.elbow.k
    ax.axvline(elbow, color="#E45756", linestyle="--", label=f"elbow k={elbow}")
    ax.axvline(card.k, color="#54A24B", linestyle=":", label=f"chosen k={card.k}")
    ax.set(xlabel="number of clusters k", ylabel="inertia (within-cluster sum of squares)", title="Elbow method")
    ax.legend()
    _save(fig, out / "elbow.png")
    plt.close(fig)
    written["elbow"] = "elbow.png"

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ks, [r.silhouette for r in table], marker="o", color="#4C78A8", label="silhouette")
    ax.plot(ks, [r.stability for r in table], marker="s", color="#F58518", label="bootstrap stability (ARI)")
    ax.axvline(card.k, color="#54A24B", linestyle=":", label=f"chosen k={card.k}")
    ax.set(xlabel="number of clusters k", ylabel="score", title="Silhouette and stability by k", ylim=(0, 1.05))
    ax.legend()
    _save(fig, out / "silhouette.png")
    plt.close(fig)
    written["silhouette"] = "silhouette.png"

    sample = card.pca.sample
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for key, seg in card.segments.items():
        xs = [x for x, k in zip(sample.x, sample.segment_key, strict=True) if k == key]
        ys = [y for y, k in zip(sample.y, sample.segment_key, strict=True) if k == key]
        ax.scatter(xs, ys, s=10, alpha=0.7, color=SEGMENT_COLOURS.get(key), label=seg.name)
    evr = card.pca.explained_variance_ratio
    ax.set(xlabel=f"PC1 ({evr[0]:.0%} of variance)", ylabel=f"PC2 ({evr[1]:.0%} of variance)",
           title="Customers on the first two principal components")
    ax.legend(markerscale=2)
    _save(fig, out / "pca.png")
    plt.close(fig)
    written["pca"] = "pca.png"
    return written
