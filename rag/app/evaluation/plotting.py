"""The recall@k plot of `rag eval`."""

from __future__ import annotations

from pathlib import Path


def save_plot(recall_by_k: list[float], path: Path, title: str) -> None:
    """recall@k against k as a PNG (matplotlib's Agg canvas; no pyplot, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    ks = list(range(1, len(recall_by_k) + 1))
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(ks, recall_by_k, marker="o")
    if len(ks) <= 12:
        for k, r in zip(ks, recall_by_k):
            ax.annotate(f"{r:.3f}", (k, r), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set(xlabel="k (passages retrieved)", ylabel="recall@k (answer in the top k)", ylim=(0, 1.1), title=title)
    ax.set_yticks([i / 5 for i in range(6)])
    ax.set_xlim(0.5, len(ks) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
