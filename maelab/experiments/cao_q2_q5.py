"""Cao Q2 (low-rank knee) and Q5 (information-controlled knock-out) on trained checkpoints.

    python -m maelab.experiments.cao_q2_q5 q2 RUN [RUN ...]   # runs of `maelab pretrain -c lowrank`
    python -m maelab.experiments.cao_q2_q5 q5 RUN [RUN ...]   # runs on a synthetic world

Prints one line per run (the question's treated / control values, the effect with its 95%
interval and the verdict) and, for Q2, the knee of the model's and of the optimum's error
against the rank next to the formula's. `--json FILE` writes the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from maelab.data import build_splits
from maelab.models.checkpoints import load_pretrained
from maelab.probes.information_knockout import q5_experiment
from maelab.probes.low_rank import measured_knee, q2_experiment
from maelab.probes.questions import QuestionResult, question_row
from maelab.verdicts import OVER_IMAGES, decide_table


def measure(question: str, run: Path) -> tuple[QuestionResult, Any]:
    model, cfg = load_pretrained(run / "checkpoints" / "last.pt")
    splits = build_splits(cfg.data)
    if question == "q2":
        res = q2_experiment(model, splits.test, rank=cfg.data.lowrank.rank, fit_images=splits.train)
    else:
        res = q5_experiment(model, splits.test, fit_images=splits.train)
    return res, decide_table([question_row(res)], sampling=OVER_IMAGES)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", choices=("q2", "q5"))
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = []
    for run in args.runs:
        res, row = measure(args.question, run)
        lo, hi = row.ci
        print(
            f"{run.name}: treated {res.treated:.4f} control {res.control_value:.4f} "
            f"effect {row.effect:+.4f} [{lo:+.4f}, {hi:+.4f}] (margin {row.margin}) "
            f"-> {row.outcome}; " + ", ".join(f"{k} {v:.4g}" for k, v in res.details.items())
        )
        out.append({"run": str(run), "result": dataclasses.asdict(res), "outcome": row.outcome,
                    "effect": row.effect, "ci": [lo, hi]})  # fmt: skip
    if args.question == "q2":
        by_rank = {int(o["result"]["details"]["rank"]): o["result"] for o in out}
        model = measured_knee({k: r["treated"] for k, r in by_rank.items()})
        optimum = measured_knee({k: r["control_value"] for k, r in by_rank.items()})
        formula = {int(r["details"]["knee"]) for r in by_rank.values()}
        print(f"knee: model {model}, data-only optimum {optimum}, formula {sorted(formula)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
