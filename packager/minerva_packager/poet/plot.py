"""RAM over the steps of each schedule, one line per schedule (``minerva plan --plot``)."""


def plot_ram(graph, candidates, path, budget=None):
    """Draw RAM (bytes) after every step of each feasible :class:`Candidate` into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .schedule import simulate

    figure, axes = plt.subplots(figsize=(9, 4.5))
    for candidate in candidates:
        if candidate.document is None:
            continue
        document = candidate.document
        timeline = simulate(graph, document["steps"], document["cost_model"])["ram_timeline"]
        energy = document["predicted"]["energy_j"]
        label = f"{candidate.name} ({energy:.4g} J{'' if candidate.feasible else ', over'})"
        axes.plot(range(len(timeline)), timeline, label=label, linewidth=1.2)
    if budget is not None:
        axes.axhline(budget, color="black", linestyle="--", linewidth=1, label="RAM budget")
    axes.set_xlabel("step")
    axes.set_ylabel("RAM (bytes)")
    axes.set_title(f"RAM over one training iteration: {graph.name}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
