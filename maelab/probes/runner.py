"""Run the theory probes and Cao's question experiments on one checkpoint.

Writes `OUT/<probe>.json` + `OUT/<probe>.png` per per-model probe, `OUT/question_<Qn>.json` per
question experiment (its `QuestionResult`, per-image differences included) and `OUT/verdicts.json`
(the study's schema: one row per question, bootstrap intervals over images, n_seeds = 1).

Any checkpoint: a maelab pretraining checkpoint or official MAE weights (`mae_pretrain_vit_*`,
encoder only, or `mae_visualize_vit_*` with the decoder). Any images: the checkpoint's data or
`data.*` overrides (the synthetic world, `digits`, an ImageFolder). The images follow the model
(`inputs.fit_to_model`): its image size and channels, ImageNet statistics for official weights.
A probe or question that needs what the checkpoint or data lack (a decoder, ground-truth latents,
trained runs) is skipped with one line. Probes over a set of runs (the decoder ablation) are
drawn by `maelab analyze decoder` (`maelab.experiments.decoder_analysis`) from a sweep instead.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from maelab import verdicts as vd
from maelab.config import DataConfig, MaskConfig, override_data
from maelab.data import build_splits
from maelab.data.base import ImageSet, Splits
from maelab.data.low_rank_family import at_rank, rank_ladder
from maelab.errors import ConfigError
from maelab.evaluation.baselines import random_encoder
from maelab.evaluation.splits import cached_splits
from maelab.models.checkpoints import load_checkpoint, load_pretrained, official_arch
from maelab.models.mae import MaskedAutoencoder
from maelab.probes import PROBES, QUESTIONS, get_probe, run_theory_probe
from maelab.probes.inputs import fit_to_model, spread_sample
from maelab.probes.questions import QuestionResult, question_row
from maelab.probes.results import to_jsonable
from maelab.run_folder import VERDICTS_FILE, read_json
from maelab.run_records import write_probe_record, write_question_record

# Images per probe: enough for stable means, small enough for a CPU demo.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "identifiability": {"max_images": 512, "kernel": False},
    "position": {"max_images": 256},
    "low_rank": {"max_images": 256},
    "stability": {"max_images": 256},
    "interpolation": {"max_images": 128},
}
DEFAULT_IMAGES = 512  # test images read into memory when --max-images is not given


@dataclass
class ProbeTarget:
    """What the probes read from one checkpoint: the model and images as it takes them."""

    model: MaskedAutoencoder
    images: ImageSet  # test images (evenly spaced over the split)
    fit_images: ImageSet  # training images, for probes that fit on other images than they test
    has_decoder: bool
    official: bool
    data: DataConfig
    seed: int  # the training seed: the untrained control is that seed's initial network
    mask: MaskConfig  # the training mask (official weights: the default); probes use its ratio

    @property
    def has_latents(self) -> bool:
        return bool(self.images.latents)


@dataclass
class ProbeRun:
    """What `probe_checkpoint` did: probe records, question results, skip lines, verdicts."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    questions: dict[str, QuestionResult] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # one line per probe / question skipped
    verdicts: Path | None = None


def load_target(
    ckpt: str | Path,
    data_overrides: Sequence[str] = (),
    device: str | torch.device = "cpu",
    max_images: int | None = None,
) -> ProbeTarget:
    """Load the model on `device` and its probe-time images (the checkpoint's data with
    `data.key=value` overrides, at most `max_images` test images, fitted to the model)."""
    state = load_checkpoint(ckpt)
    # as load_pretrained decides: a maelab checkpoint stores its arch and config beside the weights
    maelab = all(k in state for k in ("model", "arch", "config"))
    official = None if maelab else official_arch(state, Path(ckpt))
    del state
    model, cfg = load_pretrained(ckpt, map_location=device)
    overrides = list(data_overrides)
    names = [o.partition("=")[2] for o in overrides if o.startswith("data.name=")]
    if official is not None and not names:
        raise ConfigError(
            f"'{ckpt}' holds official MAE weights, which store no data: give the images, e.g. "
            "data.name=digits or data.name=folder data.root=DIR"
        )
    if names and not any(o.startswith("data.image_size=") for o in overrides):
        # other data than at pretraining: read it at the model's size (a folder would otherwise
        # stream at 224 px); generated worlds have their own size and are resized after
        size = "null" if names[-1] == "synthetic" else str(model.arch.img_size)
        overrides.append(f"data.image_size={size}")
    data = override_data(cfg.data, overrides)
    splits = cached_splits(data)
    imagenet = official is not None
    images = fit_to_model(spread_sample(splits.test, max_images or DEFAULT_IMAGES), model.arch,
                          imagenet)  # fmt: skip
    fit = fit_to_model(spread_sample(splits.train, max_images or DEFAULT_IMAGES), model.arch,
                       imagenet)  # fmt: skip
    has_decoder = official is None or official.has_decoder
    seed = 0 if official is not None else cfg.train.seed
    return ProbeTarget(model, images, fit, has_decoder, official is not None, data, seed,
                       cfg.mask)  # fmt: skip


def missing_need(target: ProbeTarget, decoder: bool, latents: bool) -> str:
    """Why a probe or question cannot run on this target ("" when it can)."""
    if decoder and not target.has_decoder:
        return "needs the decoder; this checkpoint is encoder-only"
    if latents and not target.has_latents:
        return f"needs ground-truth latents; data.name={target.data.name} has none"
    return ""


def plan(target: ProbeTarget, names: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(the probes / questions to run, one skip line per one that cannot); `names` None: every
    per-model probe and every question."""
    wanted = list(names) if names else [*PROBES, *QUESTIONS]
    todo, skipped = [], []
    for name in wanted:
        if name in QUESTIONS:
            q = QUESTIONS[name]
            why = (
                f"measured over trained runs ({q.from_runs})"
                if q.from_runs
                else "no experiment function registered"
                if q.run is None
                else f"needs data.name={q.needs_data} ({q.needs_data_why}); this data is "
                f"{target.data.name}"
                if q.needs_data and target.data.name != q.needs_data
                else missing_need(target, q.needs_decoder, q.needs_latents)
            )
        else:
            p = get_probe(name)
            why = (
                "reads a set of runs, not one checkpoint"
                if p.kind != "model"
                else missing_need(target, p.needs_decoder, p.needs_latents)
            )
        if why:
            skipped.append(f"{name}: skipped, {why}")
        else:
            todo.append(name)
    return todo, skipped


def run_question(
    fn: Callable[..., QuestionResult], target: ProbeTarget, max_images: int | None
) -> QuestionResult:
    """Call a question's experiment with the options its signature names: `max_images`,
    `fit_images` (other images than the tested ones), `seed` (0), `untrained` / `control` (the
    checkpoint's architecture at its training seed's initial weights, decoder included), `rank`
    (the low-rank family's rank, on that data), `ladder` (the family at a ladder of ranks),
    `no_regions` (the synthetic world without regional sharing) and `mask_ratio` (the
    checkpoint's training ratio)."""
    params = inspect.signature(fn).parameters
    offered: dict[str, Callable[[], Any]] = {
        "max_images": lambda: max_images,
        "fit_images": lambda: target.fit_images,
        "seed": lambda: 0,
        "untrained": lambda: untrained_like(target),
        "control": lambda: untrained_like(target),
        "rank": lambda: low_rank_of(target.data),
        "ladder": lambda: rank_ladder_images(target, max_images),
        "no_regions": lambda: no_regions_images(target, max_images),
        "mask_ratio": lambda: target.mask.ratio,
    }
    opts = {k: make() for k, make in offered.items() if k in params}
    return fn(target.model, target.images, **{k: v for k, v in opts.items() if v is not None})


def untrained_like(target: ProbeTarget) -> MaskedAutoencoder:
    """The checkpoint's architecture with its training seed's initial weights, on its device."""
    device = next(target.model.parameters()).device
    return random_encoder(target.model.arch, target.seed).to(device)


def low_rank_of(data: DataConfig) -> int | None:
    """The rank knob of the low-rank image family (None for other data)."""
    family = getattr(data, "lowrank", None) if data.name == "lowrank" else None
    return getattr(family, "rank", None)


def _as_the_model_reads(
    splits: Splits, target: ProbeTarget, count: int
) -> tuple[ImageSet, ImageSet]:
    """(test, fit) images of other data, sampled and fitted as the checkpoint's are, standardised
    with the checkpoint's statistics (the model's input convention)."""
    pair = []
    for split in (splits.test, splits.train):
        images = fit_to_model(spread_sample(split, count), target.model.arch, target.official)
        images.mean, images.std = target.images.mean, target.images.std
        pair.append(images)
    return pair[0], pair[1]


def rank_ladder_images(
    target: ProbeTarget, max_images: int | None
) -> dict[int, tuple[ImageSet, ImageSet]] | None:
    """The checkpoint's low-rank family at every rank of `rank_ladder` (None for other data)."""
    if target.data.name != "lowrank":
        return None
    size = target.data.image_size or target.model.arch.img_size
    return {k: _as_the_model_reads(at_rank(target.data, k), target, max_images or DEFAULT_IMAGES)
            for k in rank_ladder(target.data.lowrank, size)}  # fmt: skip


def no_regions_images(
    target: ProbeTarget, max_images: int | None
) -> tuple[ImageSet, ImageSet] | None:
    """The checkpoint's synthetic world with every patch its own cell and region (patches share
    only the global latent; `STUDY_32PX_NO_REGIONS` is this for the study world), as (test,
    fit) images; None for other data."""
    if target.data.name != "synthetic":
        return None
    world = target.data.synthetic
    cell = world.image_size // target.model.arch.grid_size  # one patch, in the world's pixels
    control = world.model_copy(update={"cell_size": cell, "region_cells": 1})
    data = target.data.model_copy(update={"synthetic": control})
    return _as_the_model_reads(build_splits(data), target, max_images or DEFAULT_IMAGES)


def regime_reached(result: QuestionResult) -> bool:
    """A reconstruction question is decided only for a model that predicts masked patches
    better than their mean (`model_base_error` < 1, as a share of their variance): an untrained
    decoder leans on nothing and would pass a "no near advantage" test by default."""
    return result.details.get("model_base_error", 0.0) < 1.0


def question_verdicts(results: Sequence[QuestionResult], config_hash: str) -> vd.Verdicts:
    """The verdict rows of one checkpoint's questions: bootstrap intervals over the paired units,
    Holm over the prediction rows; the file states n_seeds = 1 (the per-unit values are in the
    questions' own JSON)."""
    rows = [question_row(r, regime_reached(r)) for res in results for r in res.rows]
    return vd.Verdicts(
        commit=vd.git_commit(Path(__file__).resolve().parent),
        config_hash=config_hash,
        ci_method=vd.OVER_IMAGES.ci_method,
        verdicts=tuple(vd.decide_table(rows, sampling=vd.OVER_IMAGES)),
    )


def probe_checkpoint(
    ckpt: str | Path,
    out_dir: str | Path,
    names: Sequence[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    device: str | torch.device = "cpu",
    data_overrides: Sequence[str] | None = None,
    max_images: int | None = None,
    quiet: bool = True,
) -> ProbeRun:
    """Run probes and questions (default: every one that applies) on a checkpoint; writes their
    JSON (+ PNG) and, when a question ran, `verdicts.json` into `out_dir`."""
    target = load_target(ckpt, data_overrides or (), device, max_images)
    todo, skipped = plan(target, names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = ProbeRun(skipped=skipped)
    bar = tqdm(todo, desc="probes", unit="probe", disable=quiet, dynamic_ncols=True)
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.time()
        if name in QUESTIONS:
            fn = QUESTIONS[name].run
            assert fn is not None  # plan() skipped the unregistered ones
            result = run_question(fn, target, max_images)
            run.questions[name] = result
            write_question_record(out_dir, name, Path(ckpt), to_jsonable(result), time.time() - t0)
            continue
        opts = dict(DEFAULT_OPTIONS.get(name, {}))
        if max_images is not None and "max_images" in opts:
            opts["max_images"] = max_images
        if "mask_ratio" in inspect.signature(get_probe(name).run).parameters:
            opts["mask_ratio"] = target.mask.ratio  # the checkpoint's, not a default
        opts.update((options or {}).get(name, {}))
        if name == "identifiability" and target.fit_images.latents:
            opts.setdefault("fit_images", target.fit_images)
        result = run_theory_probe(
            name, target.model, target.images, figure_path=out_dir / f"{name}.png", **opts
        )
        extra = {"summary": to_jsonable(result.summary())} if name == "identifiability" else {}
        path = write_probe_record(out_dir, name, get_probe(name).question, Path(ckpt),
                                  to_jsonable(result), time.time() - t0, **extra)  # fmt: skip
        run.records[name] = read_json(path)
    if run.questions:
        digest = vd.config_hash({"checkpoint": str(Path(ckpt)), "data": target.data.model_dump(mode="json"),
                                 "max_images": max_images})  # fmt: skip
        verdicts = question_verdicts(list(run.questions.values()), digest)
        run.verdicts = vd.write_verdicts(out_dir / VERDICTS_FILE, verdicts)
    return run
