"""mothlab.analysis — what a pruned experiment says: sparsity, node states, motifs, z-scores.

The public face every view, figure, report and CLI command uses (nobody re-derives these)::

    import mothlab.analysis as A
    r = A.sparsity_result("runs/small.zarr")          # losses, both selection rules, Table 1, ...
    level, network = r.level_to_show("paper")         # THE level and network to show first
    print(r.caption(level, network))                  # one true sentence about it
    A.analyse_experiment("runs/small.zarr", "edges_live_nodes")   # motif z-scores, stored
    A.motif_summary("runs/small.zarr", "edges_live_nodes", rule="paper")

Name lists are owned here: :data:`SELECTION_RULES`, :data:`NULLS` (name → what the null keeps),
:data:`NULL_LABELS`, :data:`MOTIFS`, :data:`MOTIF_LABELS`, :data:`NODE_STATES`.

Modules: :mod:`.motifs` (exact counts, ghost/dead removal), :mod:`.nulls` (random layered
networks, exact moments), :mod:`.zscores`, :mod:`.sparsity`, :mod:`.experiment_motifs` (motif
analyses stored with an experiment), :mod:`.topology` (motif-guided masks). Imports go one way:
motifs and nulls → zscores; motifs → sparsity; all of them → experiment_motifs.
"""

from mothlab.analysis.experiment_motifs import (
    MIN_NETWORKS,
    MotifResult,
    analyse_experiment,
    load_motif_results,
    motif_result,
    motif_summary,
)
from mothlab.analysis.motifs import (
    MOTIF_LABELS,
    MOTIFS,
    count_motifs,
    dense_closed_forms,
    prune_ghost_dead,
)
from mothlab.analysis.nulls import (
    NULL_ALIASES,
    NULL_LABELS,
    NULLS,
    edges_moments,
    resolve_null,
    sample_null,
)
from mothlab.analysis.sparsity import (
    NODE_STATES,
    SELECTION_RULES,
    Shown,
    SparsityResult,
    format_loss,
    node_states,
    optimal_levels,
    sparsity_result,
)
from mothlab.analysis.zscores import ZScores, zscores

__all__ = [
    "SELECTION_RULES",
    "NULLS",
    "NULL_LABELS",
    "NULL_ALIASES",
    "MOTIFS",
    "MOTIF_LABELS",
    "NODE_STATES",
    "MIN_NETWORKS",
    "sparsity_result",
    "SparsityResult",
    "Shown",
    "optimal_levels",
    "node_states",
    "format_loss",
    "motif_result",
    "motif_summary",
    "MotifResult",
    "analyse_experiment",
    "load_motif_results",
    "count_motifs",
    "prune_ghost_dead",
    "dense_closed_forms",
    "zscores",
    "ZScores",
    "sample_null",
    "edges_moments",
    "resolve_null",
]
