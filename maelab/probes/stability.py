"""Cao Q3: representations stay stable from layer to layer.

Scaled dot-product attention (rows of the attention map sum to 1) and skip connections keep each
block's update small relative to the residual stream. Per block we measure the relative update
``||x_out - x_in|| / ||x_in||`` of the attention half and of the MLP half separately, and of the
whole block, averaged over tokens; and the linear CKA between adjacent layers' tokens.

The Q3 experiment (`q3_experiment`) measures each block's perturbation gain
``||f(x + d) - f(x)|| / ||d||`` for a small random ``d`` at the block's input, in the trained model
and in a control (the untrained model, or a model trained with one component removed:
`model.ablation`), paired over images. Beside it, one row per ablation: the checkpoint against
its own weights run without that component, minus the same contrast of the untrained network
(the placebo: an architecture that erases perturbations without skips does so untrained too).
`training_stability` reads divergence and loss spikes from a run's loss curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from timm.models.vision_transformer import Block

from maelab.config import MASK_RATIO, MaskConfig
from maelab.data.base import ImageSet
from maelab.evaluation.features import encoder_tokens
from maelab.masking import MaskGeometry, draw_mask
from maelab.metrics import linear_cka, relative_update
from maelab.models.ablation import ABLATIONS, block_ablation, block_halves
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.activations import decoder_input, encoder_input
from maelab.probes.inputs import eval_mode, model_device, normalised, take
from maelab.probes.questions import QuestionResult


@dataclass
class StabilityResult:
    part: str  # "encoder" or "decoder"
    attn_update: list[
        float
    ]  # per block: ||x_mid - x_in|| / ||x_in||, x_mid = x_in + attention half
    mlp_update: list[float]  # per block: ||x_out - x_mid|| / ||x_mid||
    block_update: list[float]  # per block: ||x_out - x_in|| / ||x_in||
    adjacent_cka: list[float]  # per block: linear CKA(x_in tokens, x_out tokens)
    num_images: int


def stability_of_blocks(
    blocks: Sequence[Block], x: torch.Tensor, max_cka_tokens: int = 8192
) -> dict[str, list[float]]:
    """Relative updates and adjacent-layer CKA for a stack of blocks on input ``x`` (N, T, D).

    CKA treats every token as a sample (at most ``max_cka_tokens`` of them, evenly spaced).
    """
    out: dict[str, list[float]] = {"attn": [], "mlp": [], "block": [], "cka": []}
    for blk in blocks:
        mid, y = block_halves(blk, x)
        out["attn"].append(relative_update(x, mid))
        out["mlp"].append(relative_update(mid, y))
        out["block"].append(relative_update(x, y))
        a, b = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
        step = max(1, a.shape[0] // max_cka_tokens)
        out["cka"].append(linear_cka(a[::step], b[::step]))
        x = y
    return out


def stability_probe(
    model: MaskedAutoencoder,
    images: ImageSet,
    part: str = "encoder",
    max_images: int | None = 256,
    mask_ratio: float = MASK_RATIO,
    seed: int = 0,
) -> StabilityResult:
    """Per-block relative updates and adjacent CKA of the encoder (all patches, no masking) or
    of the decoder (on a fixed random mask of ``mask_ratio``, the checkpoint's ratio when the
    runner calls it; every token incl. cls counts)."""
    if part not in ("encoder", "decoder"):
        raise ValueError(f"part must be 'encoder' or 'decoder', got '{part}'")
    subset = take(images, max_images)
    with eval_mode(model):
        imgs = normalised(subset, model_device(model))
        if part == "encoder":
            x, blocks = encoder_input(model, imgs), model.blocks
        else:
            g = torch.Generator().manual_seed(seed)
            geom = MaskGeometry(model.arch.grid_size, model.patch_size)
            mask = draw_mask(MaskConfig(ratio=mask_ratio), imgs.shape[0], geom, g).to(imgs.device)
            latent = encoder_tokens(model, imgs, mask)
            x, blocks = decoder_input(model, latent, mask.ids_restore), model.decoder_blocks
        stats = stability_of_blocks(list(blocks), x)
    return StabilityResult(
        part=part,
        attn_update=stats["attn"],
        mlp_update=stats["mlp"],
        block_update=stats["block"],
        adjacent_cka=stats["cka"],
        num_images=len(subset),
    )


# ---------------------------------------------------------------- Q3 as an experiment
# Margin of the Q3 rows, in units of the per-block |ln gain| (docs/theory.md, Cao Q3): a block
# that moves a perturbation's size by a factor of exp(0.1) ~ 1.1 more than the control is the
# smallest difference the stability claim is about.
Q3_MARGIN = 0.1
# Margin of the training rows, in ln units of the worst loss rise: half a spike (ln 1.1 / 2).
Q3_TRAINING_MARGIN = math.log(1.1) / 2
Q3_CLAIM = (
    "skip connections and scaled softmax attention keep each block's perturbation gain near 1"
)


def perturbation_gains(
    blocks: Sequence[Block],
    x: torch.Tensor,
    rel_eps: float = 1e-2,
    seed: int = 0,
    relative: bool = False,
) -> torch.Tensor:
    """Per image and block, ``||f(x_b + d) - f(x_b)|| / ||d||`` (N, B), norms over the image's
    tokens; ``x_b`` is block b's clean input, ``d`` Gaussian with an rms of ``rel_eps`` times
    the rms of ``x_b`` on that image (a small perturbation whatever the stream's scale).

    ``relative``: divide by the block's change of scale ``||f(x_b)|| / ||x_b||``, i.e. the gain
    of the perturbation relative to the stream it rides on."""
    g = torch.Generator().manual_seed(seed)
    gains = []
    for blk in blocks:
        rms = x.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()  # (N, 1, 1)
        d = torch.randn(x.shape, generator=g).to(x) * rel_eps * rms
        y = blk(x)
        gain = (blk(x + d) - y).flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1)
        if relative:
            gain = gain * x.flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)
        gains.append(gain)
        x = y
    return torch.stack(gains, dim=1).double().cpu()


def gain_spread(gains: torch.Tensor) -> torch.Tensor:
    """Per image, the mean over blocks of ``|ln gain|`` (N,): 0 when every block passes a
    perturbation on at its own size, larger when blocks amplify or erase it."""
    return gains.log().abs().mean(dim=1)


def encoder_gains(
    model: MaskedAutoencoder,
    images: ImageSet,
    rel_eps: float = 1e-2,
    seed: int = 0,
    relative: bool = False,
) -> torch.Tensor:
    """Perturbation gains (N, depth) of the encoder's blocks on all patches (no masking)."""
    with eval_mode(model):
        x = encoder_input(model, normalised(images, model_device(model)))
        return perturbation_gains(list(model.blocks), x, rel_eps, seed, relative)


def with_ablation(model: MaskedAutoencoder, ablation: str) -> MaskedAutoencoder:
    """The same weights with the encoder's blocks run under ``ablation`` (an eval-mode copy on
    the model's device; the ablations change the forward pass only, not the parameters)."""
    other = MaskedAutoencoder(replace(model.arch, ablation=ablation), init_seed=0)
    other.load_state_dict(model.state_dict())
    return other.to(model_device(model)).eval()


def q3_experiment(
    model: MaskedAutoencoder,
    images: ImageSet,
    control: MaskedAutoencoder,
    control_name: str = "untrained",
    untrained: MaskedAutoencoder | None = None,
    ablations: Sequence[str] = ABLATIONS[1:],
    max_images: int | None = 256,
    rel_eps: float = 1e-2,
    seed: int = 0,
) -> QuestionResult:
    """q3_experiment(model, images, control, control_name="untrained", untrained=None, ablations=("no_skip", "no_scale", "no_softmax"), max_images=256, rel_eps=1e-2, seed=0) -> QuestionResult

    Per image, the mean over the encoder's blocks of ``|ln gain|`` (`gain_spread`) in ``model``
    minus the same in ``control`` (same images, same perturbations). Against a control trained
    without a component (``control_name`` e.g. "no_skip") the prediction is "decrease" (the
    full model's blocks stay nearer a gain of 1); against the untrained model, "none" (training
    keeps the blocks as near 1 as the architecture starts them). With ``untrained`` (the run's
    start, as the runner gives it), `more` holds one row per ablation (`q3_ablation_row`).
    Needs the encoder only: no decoder, no latents; ``control`` must take the same images (same
    grid and channels)."""
    subset = take(images, max_images)
    gains = encoder_gains(model, subset, rel_eps, seed)  # (N, depth)
    base = encoder_gains(control, subset, rel_eps, seed)
    treated, reference = gain_spread(gains), gain_spread(base)
    details: dict[str, float] = {}
    for name, m, g in (("", model, gains), ("control_", control, base)):
        relative = encoder_gains(m, subset, rel_eps, seed, relative=True)
        for i, (a, r) in enumerate(zip(g.mean(dim=0), relative.mean(dim=0), strict=True)):
            details[f"{name}gain_block{i}"] = float(a)
            details[f"{name}relative_gain_block{i}"] = float(r)
    more = ()
    if untrained is not None:
        own = model.arch.ablation
        more = tuple(q3_ablation_row(model, untrained, subset, a, rel_eps, seed)
                     for a in ablations if a != own)  # fmt: skip
    return QuestionResult(
        question="Q3",
        claim=Q3_CLAIM,
        manipulation=f"trained encoder (blocks: {block_ablation(model.blocks[0])})",
        control=f"{control_name} encoder (blocks: {block_ablation(control.blocks[0])})",
        treated=float(treated.mean()),
        control_value=float(reference.mean()),
        paired=[float(v) for v in treated - reference],
        predicted="none" if control_name == "untrained" else "decrease",
        margin=Q3_MARGIN,
        unit="image",
        details=details,
        more=more,
    )


def q3_ablation_row(
    model: MaskedAutoencoder,
    untrained: MaskedAutoencoder,
    images: ImageSet,
    ablation: str,
    rel_eps: float = 1e-2,
    seed: int = 0,
) -> QuestionResult:
    """One ablation's row: per image, `gain_spread` of ``model`` minus that of its weights run
    under ``ablation`` (`with_ablation`), predicted a decrease; the same contrast of the
    ``untrained`` network (same images, same perturbations) is the placebo, so the row is
    decided on what training adds to the component's effect."""
    spread = {}
    for name, net in (("trained", model), ("untrained", untrained)):
        for variant, m in (("", net), ("_ablated", with_ablation(net, ablation))):
            spread[name + variant] = gain_spread(encoder_gains(m, images, rel_eps, seed))
    raw = spread["trained"] - spread["trained_ablated"]
    placebo = spread["untrained"] - spread["untrained_ablated"]
    own = block_ablation(model.blocks[0])
    return QuestionResult(
        question="Q3",
        claim=f"{Q3_CLAIM}: without {ablation}".replace("without no_", "without "),
        manipulation=f"trained encoder (blocks: {own}), minus the same contrast untrained",
        control=f"the same weights with blocks {ablation}",
        treated=float(spread["trained"].mean()),
        control_value=float(spread["trained_ablated"].mean()),
        paired=[float(v) for v in raw],
        predicted="decrease",
        margin=Q3_MARGIN,
        unit="image",
        details={
            "untrained": float(spread["untrained"].mean()),
            "untrained_ablated": float(spread["untrained_ablated"].mean()),
            "raw": float(raw.mean()),
            "placebo": float(placebo.mean()),
        },
        placebo=[float(v) for v in placebo],
    )


# ---------------------------------------------------------------- training stability
# A spike: a step whose loss rises more than 10% above the lowest loss so far (per-batch noise of
# a short MAE run stays within a few percent). A run that stops early or logs a non-finite loss
# diverged; its worst rise counts as DIVERGED_RISE, beyond any finite spike measured.
SPIKE_RISE = math.log(1.1)
DIVERGED_RISE = math.log(10.0)


@dataclass(frozen=True)
class TrainingStability:
    """Divergence and loss spikes of one run's per-step loss curve."""

    steps: int  # finite losses seen
    diverged: bool  # a non-finite loss, or fewer steps than planned
    spikes: int  # steps whose loss exceeds the running minimum by more than SPIKE_RISE (log)
    worst_rise: float  # max over steps of ln(loss / running minimum); DIVERGED_RISE if diverged


def training_stability(
    losses: Sequence[float], planned_steps: int | None = None, skip: int = 0
) -> TrainingStability:
    """Spikes and divergence of a loss curve (one loss per step, in order); the first ``skip``
    steps (warm-up transients) only set the running minimum."""
    values = np.asarray([float(v) for v in losses], dtype=np.float64)
    finite = np.isfinite(values)
    cut = int(np.argmin(finite)) if not finite.all() else len(values)
    good = values[:cut]
    diverged = cut < len(values) or (planned_steps is not None and len(values) < planned_steps)
    if len(good) == 0:
        return TrainingStability(0, True, 0, DIVERGED_RISE)
    rise = np.log(good / np.minimum.accumulate(good))[skip:]
    worst = float(rise.max()) if rise.size else 0.0
    return TrainingStability(
        steps=len(good),
        diverged=diverged,
        spikes=int((rise > SPIKE_RISE).sum()),
        worst_rise=max(worst, DIVERGED_RISE) if diverged else worst,
    )


def q3_training_experiment(
    treated: Sequence[Sequence[float]],
    control: Sequence[Sequence[float]],
    control_name: str,
    planned_steps: int | None = None,
    skip: int = 0,
) -> QuestionResult:
    """q3_training_experiment(treated, control, control_name, planned_steps=None, skip=0) -> QuestionResult

    ``treated`` / ``control``: per-step loss curves of runs paired by seed (same order)."""
    a = [training_stability(c, planned_steps, skip) for c in treated]
    b = [training_stability(c, planned_steps, skip) for c in control]
    if len(a) != len(b):
        raise ValueError(f"{len(a)} treated and {len(b)} control runs: pair them by seed")
    paired = [x.worst_rise - y.worst_rise for x, y in zip(a, b, strict=True)]
    return QuestionResult(
        question="Q3",
        claim="skip connections and scaled softmax attention keep training free of loss spikes",
        manipulation="training with every component",
        control=f"training with the {control_name} ablation",
        treated=float(np.mean([x.worst_rise for x in a])),
        control_value=float(np.mean([y.worst_rise for y in b])),
        paired=paired,
        predicted="decrease",
        margin=Q3_TRAINING_MARGIN,
        unit="seed",
        details={
            "treated_diverged": float(sum(x.diverged for x in a)),
            "control_diverged": float(sum(y.diverged for y in b)),
            "treated_spikes": float(np.mean([x.spikes for x in a])),
            "control_spikes": float(np.mean([y.spikes for y in b])),
        },
    )
