"""Typed configuration: YAML files plus `key=value` overrides, validated once at the edge."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from maelab.errors import ConfigError

# Bounds checked where the value enters, so a bad number is reported by its key, not by a crash
# deep inside training (a zero log interval, a negative width, a seed numpy refuses).
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, lt=2**63)]
# dotted names of the fields that sweeps vary and studies name in their conditions
MASK_RATIO_KEY, MASK_UNIT_KEY, MASK_STRATEGY_KEY = "mask.ratio", "mask.unit", "mask.strategy"
OBJECTIVE_KEY = "objective.name"
DECODER_DEPTH_KEY, DECODER_WIDTH_KEY = "model.decoder_depth", "model.decoder_embed_dim"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SyntheticConfig(Strict):
    """The hierarchical-latent generator (see maelab.data.synthetic)."""

    image_size: int = 16
    channels: int = 3
    cell_size: int = 4  # px side of a cell (one local latent each)
    region_cells: int = 2  # cells per region side (one regional latent each)
    global_dim: int = 8
    region_noise_dim: int = 4
    cell_noise_dim: int = 4
    num_classes: int = 10
    pixel_noise: float = 0.02  # std of additive pixel noise, in [0, 1] units
    class_std: float = 0.75  # within-class std of z_g (the mixture has unit variance)
    mixing_gain: float = 1.5  # gain inside phi(x) = leak * x + (1 - leak) * tanh(gain * x)
    mixing_leak: float = 0.3  # slope of phi far from 0 (keeps it invertible)
    global_shift: float = 3.0  # amplitude of the coupling shifts in the stage of z_g
    region_shift: float = 1.5  # amplitude of the coupling shifts in the stage of each z_r
    shift_freq: float = 1.0  # frequency of the coupling shifts (cosines)
    decoder_hidden: int = 32  # sine features per cell decoder
    decoder_freq: float = 1.5  # std of the sine features' pre-activations
    decoder_sine: float = 0.5  # share of the sine features in the decoder's logit variance
    world_seed: Seed = 0  # fixes the mixing functions; samples use DataConfig.seed
    # generator version: 1 = the 16 px world as first landed; 2 adds the fields below
    version: Literal[1, 2] = 1
    region_noise_std: PosFloat = 1.0  # scale of e_r where it enters z_r (v2)
    cell_noise_std: PosFloat = 1.0  # scale of e_c where it enters z_c (v2)
    tied: bool = False  # v2: every region / cell shares one mixing map and one decoder


class LowRankConfig(Strict):
    """The low-rank image family (see maelab.data.low_rank_family)."""

    rank: PosInt = 4  # rank k of each image's centred patch matrix
    patch_size: PosInt = 4  # px side of the patches the rank refers to
    channels: PosInt = 3
    contrast: PosFloat = 40.0  # pixel std in grey levels (0..255) around mid-grey
    family_seed: Seed = 0  # fixes the shared loadings A; samples use DataConfig.seed


class GaussianConfig(Strict):
    """Gaussian worlds with a known covariance (see maelab.data.gaussian); 1 channel, float pixels."""

    kind: Literal["stationary", "hierarchy"] = "stationary"
    image_size: PosInt = 16
    # stationary: variances of a short- and a long-range squared-exponential kernel, white noise
    short_scale: PosFloat = 1.5  # px
    long_scale: PosFloat = 6.0  # px
    short_var: NonNegFloat = 0.4
    long_var: NonNegFloat = 0.5
    white_var: PosFloat = 0.1
    # hierarchy: z_g -> z_r -> z_c -> pixels, each step linear plus its own Gaussian noise
    cell_size: PosInt = 4  # px side of a cell
    region_cells: PosInt = 2  # cells per region side
    global_dim: PosInt = 4
    region_noise_dim: NonNegInt = 2
    cell_noise_dim: NonNegInt = 2
    region_noise_std: NonNegFloat = 0.3  # scale of e_r where it enters z_r
    cell_noise_std: NonNegFloat = 0.3  # scale of e_c where it enters z_c
    pixel_noise: NonNegFloat = 0.01  # std of white pixel noise, relative to the clean pixel std
    orthogonal: bool = False  # the latents' pixel loadings mutually orthogonal within a cell
    world_seed: Seed = 0  # fixes the loadings; samples use DataConfig.seed


class DataConfig(Strict):
    name: str = "synthetic"
    root: str = "~/.cache/maelab/data"
    download: bool = False
    image_size: PosInt | None = None  # None: the dataset's native size
    num_train: PosInt | None = None  # None: the dataset's default
    num_test: PosInt | None = None
    seed: Seed = 0
    augment: bool | None = None  # None: the dataset's default (off for synthetic: positions matter)
    crop_scale: tuple[float, float] = (0.2, 1.0)
    hflip: bool = True
    num_workers: NonNegInt = 2
    in_memory: bool | None = None  # folder: None holds images of <= 64 px in memory, streams larger
    on_bad_image: Literal["skip", "error"] = "skip"
    synthetic: SyntheticConfig = SyntheticConfig()
    lowrank: LowRankConfig = LowRankConfig()
    gaussian: GaussianConfig = GaussianConfig()


# ModelConfig fields that are not MAEArch fields (the ViT's shape is read from the rest;
# code_dim is a field of both archs)
NOT_ARCH_FIELDS = frozenset({"preset", "init", "kind"})


class ModelConfig(Strict):
    kind: Literal["vit", "linear"] = "vit"  # linear: maelab.models.linear (code_dim wide)
    # k, the code's width. linear: None is the pixel count (full rank). vit: the decoder reads
    # only a k-wide code (the mean visible token, projected); None: the visible tokens (MAE)
    code_dim: PosInt | None = None
    preset: str | None = "tiny"  # fills the fields below that are left unset
    img_size: PosInt | None = None
    patch_size: PosInt | None = None
    in_chans: PosInt | None = None  # None: from the data
    embed_dim: PosInt | None = None
    depth: PosInt | None = None
    num_heads: PosInt | None = None
    decoder_embed_dim: PosInt | None = None
    decoder_depth: NonNegInt | None = None
    decoder_num_heads: PosInt | None = None
    mlp_ratio: PosFloat | None = None
    norm_pix_loss: bool = True
    learnable_pos_embed: bool = False
    # the positional tables' start: the fixed 2-D sin-cos table, or trunc-normal(std 0.02)
    pos_embed_init: Literal["sincos", "random"] = "sincos"
    # Cao Q3: encoder blocks without skip connections / the 1/sqrt(d) scale / softmax rows
    ablation: Literal["none", "no_skip", "no_scale", "no_softmax"] = "none"
    # weights to start pretraining from: an official MAE .pth or a maelab checkpoint (no optimizer)
    init: str | None = None


MASK_RATIO = 0.75  # the paper's masking ratio: the default of every mask (He et al. 2022)


class MaskConfig(Strict):
    strategy: str = "random"
    ratio: float = MASK_RATIO
    unit: PosInt | None = None  # mask-unit side in px (block strategy); multiple of the patch
    ratio_range: tuple[float, float] | None = None  # per-batch ratio drawn uniformly


class ObjectiveConfig(Strict):
    name: str = "mae"
    umae_lambda: float = 0.01
    umae_feature: Literal["cls", "mean"] = "cls"


class LossConfig(Strict):
    # which pixels the reconstruction loss counts: the removed patches' (MAE), or every pixel
    # (with mask.ratio=0, a plain autoencoder)
    on: Literal["masked", "all"] = "masked"


class TrainConfig(Strict):
    # auto: small-data for images of <= 64 px, else paper; fills only unset fields (maelab.recipes)
    recipe: Literal["auto", "small-data", "paper"] = "auto"
    epochs: PosInt = 10
    batch_size: PosInt = 128  # global batch per optimizer step (before accumulation)
    accum_iter: PosInt = 1
    blr: NonNegFloat = 1.5e-4
    lr: NonNegFloat | None = None  # absolute lr; None: blr * batch * accum * world / 256
    min_lr: NonNegFloat = 0.0
    warmup_epochs: NonNegFloat = 1.0
    weight_decay: NonNegFloat = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: PosFloat | None = None
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    compile: bool = False
    seed: Seed = 0
    device: str = "auto"
    save_every: NonNegInt = 0  # epochs between numbered checkpoints; 0: only last.pt
    save_every_steps: NonNegInt = 0  # also write last.pt every N optimizer steps; 0: off
    keep_last: PosInt = 3
    on_nonfinite: Literal["stop", "skip"] = "stop"
    log_every: PosInt = 10
    threads: PosInt | None = None


class Config(Strict):
    run_dir: Annotated[str, Field(min_length=1)] = "runs/pretrain"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    mask: MaskConfig = MaskConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _check_ranges(self) -> Config:
        m = self.mask
        if not 0.0 <= m.ratio < 1.0:
            raise ValueError(f"mask.ratio={m.ratio} must be in [0, 1)")
        if m.ratio_range is not None:
            lo, hi = m.ratio_range
            if not 0.0 <= lo <= hi < 1.0:
                raise ValueError(f"mask.ratio_range={m.ratio_range} must satisfy 0 <= lo <= hi < 1")
        lo, hi = self.data.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(
                f"data.crop_scale={self.data.crop_scale} must satisfy 0 < lo <= hi <= 1"
            )
        most = m.ratio if m.ratio_range is None else m.ratio_range[1]
        if self.loss.on == "masked" and most == 0.0:
            raise ValueError(
                "mask.ratio=0 with loss.on=masked removes nothing to predict; set loss.on=all "
                "(a plain autoencoder) or a ratio above 0"
            )
        if self.model.code_dim is not None and self.model.kind == "vit":
            if self.objective.name != "mae":
                raise ValueError(
                    f"model.code_dim with objective.name={self.objective.name}: only the mae "
                    "objective trains the code; unset model.code_dim or use objective.name=mae"
                )
        if not all(0.0 <= b < 1.0 for b in self.train.betas):
            raise ValueError(f"train.betas={self.train.betas} must both be in [0, 1)")
        return self


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(sorted(options))})"


def _format_error(err: ValidationError, model: type[BaseModel]) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        parent: Any = model
        for part in e["loc"][:-1]:
            field = parent.model_fields.get(str(part))
            parent = field.annotation if field is not None else parent
        options = list(parent.model_fields) if isinstance(parent, type) else []
        return f"unknown config key '{loc}'{_suggest(str(e['loc'][-1]), options)}"
    if e["type"] == "value_error":
        return f"bad config: {e['msg'].removeprefix('Value error, ')}"
    return f"bad config value for '{loc}': {e['msg']} (got {e.get('input')!r})"


def parse_value(text: str) -> Any:
    """Parse the right-hand side of `key=value` with YAML rules (numbers, bools, lists, null)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key '{dotted}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value (e.g. train.epochs=5)")
        key, _, value = item.partition("=")
        set_dotted(tree, key.strip(), parse_value(value.strip()))
    return tree


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file '{p}' not found (give a path to a YAML file)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file '{p}' is not valid YAML: {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{p}' must hold a mapping of keys, not {type(data).__name__}"
        )
    return data


def build_config(tree: dict[str, Any], model: type[BaseModel] = Config) -> Any:
    try:
        return model.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_error(err, model)) from None


def load_config(
    files: list[str] | None = None,
    overrides: list[str] | None = None,
    model: type[BaseModel] = Config,
    base: dict[str, Any] | None = None,
) -> Any:
    """Merge `base` (e.g. a checkpoint's stored config), then YAML files left to right, then
    `key=value` overrides, and validate once."""
    tree: dict[str, Any] = dict(base or {})
    for f in files or []:
        tree = deep_merge(tree, read_yaml(f))
    tree = deep_merge(tree, parse_overrides(overrides or []))
    return build_config(tree, model)


def override_data(data: DataConfig, items: list[str]) -> DataConfig:
    """`data` with `data.key=value` items applied, validated (other keys are an error)."""
    foreign = [i for i in items if not i.startswith("data.")]
    if foreign:
        raise ConfigError(f"only data.* overrides apply here, not {', '.join(foreign)}")
    update = parse_overrides(items).get("data", {})
    return build_config(deep_merge(data.model_dump(), update), DataConfig)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; tuples become lists so stored and live configs compare."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
