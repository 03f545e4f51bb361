"""One optimizer update with the non-finite guard, shared by pretraining and fine-tuning.

A NaN or infinite loss, gradient norm or weight either ends the run with one line that names
the step, the lr and the last good checkpoint (`stop`), or skips the update (`skip`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from maelab.errors import MaelabError


class NonFiniteLossError(MaelabError):
    """The loss, the gradients or the weights became NaN or infinite."""


# with on_nonfinite=skip, this many skipped updates in a row end the run: the weights no longer
# produce finite losses and skipping would only burn time
MAX_SKIPS_IN_A_ROW = 100


@dataclass(frozen=True)
class StepPlace:
    """Where an update happens, for the error messages."""

    step: int  # 1-based count of steps, this one included
    epoch: int
    iteration: int  # within the epoch
    lr: float

    def __str__(self) -> str:
        return (
            f"step {self.step} (epoch {self.epoch}, iteration {self.iteration}, lr {self.lr:.3g})"
        )


class GuardedStep:
    """Backward, clip, (un)scale and step an optimizer, refusing non-finite values.

    `section` names the config section in the advice of the messages (`train`, `finetune`);
    `what` prefixes the loss message ("fine-tuning " -> "fine-tuning loss is nan ...");
    `can_skip`: the section has an `on_nonfinite` option to suggest.
    Counts the updates taken (`steps`) and skipped (`skipped`); `last_good` is the checkpoint
    the messages point to.
    """

    def __init__(
        self,
        opt: torch.optim.Optimizer,
        params: list[nn.Parameter],
        scaler: torch.amp.GradScaler | None,
        clip_grad: float | None,
        on_nonfinite: Literal["stop", "skip"] = "stop",
        section: str = "train",
        what: str = "",
        can_skip: bool = True,
    ) -> None:
        self.opt, self.params, self.scaler = opt, params, scaler
        self.clip_grad, self.on_nonfinite = clip_grad, on_nonfinite
        self.section, self.what, self.can_skip = section, what, can_skip
        self.steps, self.skipped, self.skips_in_a_row = 0, 0, 0
        self.last_good = "none yet"

    def check_loss(self, value: float, place: StepPlace) -> bool:
        """True for a finite loss; a non-finite one raises unless non-finite steps are skipped.

        With `skip` the caller still runs backward: in DDP the all-reduced gradients are then
        non-finite on every process, so all processes skip the update together.
        """
        if math.isfinite(value):
            return True
        if self.on_nonfinite == "stop":
            s = self.section
            advice = (
                f"Lower {s}.blr, set {s}.clip_grad, or pass {s}.on_nonfinite=skip"
                if self.can_skip
                else f"Lower {s}.blr or set {s}.clip_grad"
            )
            raise NonFiniteLossError(
                f"{self.what}loss is {value} at {place}; last good checkpoint: {self.last_good}. "
                + advice
            )
        return False

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of `loss` (already divided for gradient accumulation), scaled under fp16."""
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def update(self, place: StepPlace) -> bool:
        """Apply the accumulated gradients, or skip them if non-finite; True when applied."""
        grads_ok = True
        if self.clip_grad or self.on_nonfinite == "skip":
            if self.scaler:
                self.scaler.unscale_(self.opt)
            if self.clip_grad:
                norm = nn.utils.clip_grad_norm_(self.params, self.clip_grad)
            else:
                norm = nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
            # the fp16 scaler skips non-finite updates itself (and lowers its scale)
            grads_ok = self.scaler is not None or bool(torch.isfinite(norm))
            if not grads_ok and self.on_nonfinite == "stop":
                s = self.section
                skip = f" or pass {s}.on_nonfinite=skip" if self.can_skip else ""
                raise NonFiniteLossError(
                    f"gradient norm is {float(norm)} at {place}; last good checkpoint: "
                    f"{self.last_good}. Lower {s}.blr{skip}"
                )
        if grads_ok:
            if self.scaler:
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                self.opt.step()
            self.steps += 1
            self.skips_in_a_row = 0
        else:
            self.skipped += 1
            self.skips_in_a_row += 1
            if self.skips_in_a_row >= MAX_SKIPS_IN_A_ROW:
                raise NonFiniteLossError(
                    f"{self.skips_in_a_row} updates in a row skipped for non-finite values, up to "
                    f"step {place.step} (lr {place.lr:.3g}); last good checkpoint: "
                    f"{self.last_good}. Lower {self.section}.blr or set {self.section}.clip_grad"
                )
        self.opt.zero_grad(set_to_none=True)
        return grads_ok

    def check_weights(self, model: nn.Module, step: int) -> None:
        """Refuse to save non-finite weights over a good checkpoint."""
        flags = [torch.isfinite(p).all() for p in model.parameters()]
        if flags and not bool(torch.stack(flags).all()):
            raise NonFiniteLossError(
                f"weights became non-finite by step {step} (not saved); last good checkpoint: "
                f"{self.last_good}. Lower {self.section}.blr or set {self.section}.clip_grad"
            )
