"""The claims that need no latents, on real images (`maelab demo --full`, its second table):
Zhang et al.'s alignment, collapse and U-MAE rows and Kong et al.'s peak over the mask ratio,
every condition gated on the linear probe against the same seed's random encoder. The demo
names its conditions and claims after the data (`Study.labelled`: `digits ratio=0.75`)."""

from __future__ import annotations

from dataclasses import replace

from maelab.config import MASK_RATIO_KEY, OBJECTIVE_KEY
from maelab.experiments.declaration import (
    DECREASE,
    LOG_RANK,
    ON_TOP1,
    TOP1,
    TOP1_GATE,
    LogRatio,
    RowSpec,
    Study,
    peak_row,
)
from maelab.experiments.studies.world import (
    ALIGNS,
    COLLAPSES,
    KONG,
    PROBE_PEAKS,
    UMAE,
    UMAE_PROBE,
    UMAE_RANK,
)  # fmt: skip
from maelab.metric_names import EFFECTIVE_RANK, LINEAR_TOP1, of_pixels

MAE = "ratio=0.75"  # the MAE every other row compares with
RATIOS = ["ratio=0.5", MAE, "ratio=0.9"]  # ascending
ON_PROBE = (ON_TOP1,)

REAL_IMAGES = Study(
    "real images",
    conditions={
        RATIOS[0]: {MASK_RATIO_KEY: 0.5, OBJECTIVE_KEY: "mae"},
        MAE: {MASK_RATIO_KEY: 0.75, OBJECTIVE_KEY: "mae"},
        RATIOS[2]: {MASK_RATIO_KEY: 0.9, OBJECTIVE_KEY: "mae"},
        UMAE: {MASK_RATIO_KEY: 0.75, OBJECTIVE_KEY: "umae"},
    },
    rows=(
        replace(ALIGNS, treated=MAE, gates=ON_PROBE),
        replace(COLLAPSES, treated=MAE, gates=ON_PROBE),
        RowSpec(COLLAPSES.paper, "MAE collapses dimensions (log effective rank, trained / the "
                "pixels': a reference that is not collapsed)", MAE, None,
                LogRatio(EFFECTIVE_RANK, of_pixels(EFFECTIVE_RANK)), LOG_RANK, predicted=DECREASE,
                gates=ON_PROBE),
        replace(UMAE_PROBE, control=MAE, gates=ON_PROBE),
        replace(UMAE_RANK, control=MAE, gates=ON_PROBE),
        peak_row(KONG, PROBE_PEAKS.claim, LINEAR_TOP1, TOP1, RATIOS, gates=ON_PROBE),
    ),
    gates={ON_TOP1: TOP1_GATE},
    pilot_gate=ON_TOP1,
)  # fmt: skip
