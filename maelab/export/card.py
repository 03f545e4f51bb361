"""The model card (README.md) of an export folder: what the model is, how to load it, the data,
recipe, steps and final loss of its run, the run's probe table, and maelab's version and commit.

`run_story` reads the run folder; `model_card` only formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from maelab.data import augment_enabled
from maelab.engine.metrics_log import read_metrics
from maelab.export.folder import Written
from maelab.export.source import ExportSource
from maelab.recipes import DataFacts, choose_recipe
from maelab.run_folder import RunFolder, read_json

Target = Literal["hf", "timm"]
LIBRARY = {"hf": "transformers", "timm": "timm"}


@dataclass(frozen=True)
class RunStory:
    """The facts a card states about where the weights come from."""

    rows: list[tuple[str, str]]  # (name, text) of the training table
    probe: list[list[str]] = field(default_factory=list)  # rows of probe.json, formatted
    probe_about: str = ""


def run_story(source: ExportSource) -> RunStory:
    """Data, recipe, model, mask, objective, steps and final loss; the probe table if any."""
    a, pre = source.model.arch, source.preprocess
    model = f"ViT {a.embed_dim} wide x {a.depth} deep ({a.num_heads} heads), patch {a.patch_size}"
    if source.has_decoder:
        model += f"; decoder {a.decoder_embed_dim} wide x {a.decoder_depth} deep"
    data = f"{pre.image_size} px, {pre.channels} channel(s); mean / std from {pre.origin}"
    rows = [("data", data), ("model", model)]
    if source.kind == "official":
        rows.insert(0, ("weights", "official MAE release (facebookresearch/mae layout)"))
        return RunStory(rows)
    if source.kind == "finetune":
        return RunStory(rows + _finetune_rows(source))
    cfg, state = source.config, source.state or {}
    assert cfg is not None and source.data is not None  # a pretraining source has both
    facts = DataFacts(int(pre.num_images or 0), a.img_size, augment_enabled(source.data))
    t = cfg.train
    lr = f"lr {t.lr:g}" if t.lr is not None else f"blr {t.blr:g}"
    recipe = choose_recipe(cfg, facts).name
    rows.append(
        (
            "recipe",
            f"{recipe} (train.recipe={t.recipe}): {_count(t.epochs, 'epoch')}, batch "
            f"{t.batch_size}, {lr}, warmup {_count(t.warmup_epochs, 'epoch')}, AdamW {t.betas}, "
            f"weight decay {t.weight_decay:g}",
        )
    )
    mask = f"{cfg.mask.strategy}, ratio {cfg.mask.ratio:g}"
    if cfg.mask.unit:
        mask += f", unit {cfg.mask.unit} px"
    norm = "norm-pix" if a.norm_pix_loss else "pixel"
    rows += [("mask", mask), ("objective", f"{cfg.objective.name} ({norm} loss)")]
    run = RunFolder.of_checkpoint(source.path)
    steps = state.get("global_step")
    if steps is not None:
        rows.append(("steps", f"{int(steps):,} ({_count(int(state.get('epoch', 0)), 'epoch')})"))
    loss = final_loss(run, steps)
    if loss is not None:
        rows.append(("final loss", f"{loss:.4f} (mean of the last epoch)"))
    about, probe = probe_rows(run)
    return RunStory(rows, probe, about)


def _finetune_rows(source: ExportSource) -> list[tuple[str, str]]:
    state = source.state or {}
    head = source.classifier
    assert head is not None  # a fine-tuned source has its classifier
    rows = [
        ("fine-tuned from", f"`{state.get('pretrained', 'unknown')}`"),
        (
            "classifier",
            f"{head.num_classes} classes, {head.global_pool} pooling, "
            f"{_count(int(state.get('epoch', 0)), 'epoch')}",
        ),
    ]
    result = read_json(RunFolder.of_checkpoint(source.path).finetune_result)
    if isinstance(result.get("top1"), (int, float)):
        rows.append(("test top-1", f"{result['top1']:.1f}% (best {result['best_top1']:.1f}%)"))
    return rows


def final_loss(run: RunFolder, steps: int | None) -> float | None:
    """The loss of the last logged epoch at or before `steps` (the checkpoint's step)."""
    epochs = [r for r in read_metrics(run.metrics) if r.get("kind") == "epoch" and "loss" in r]
    if steps is not None:
        epochs = [r for r in epochs if int(r.get("step", 0)) <= int(steps)]
    return float(epochs[-1]["loss"]) if epochs else None


def probe_rows(run: RunFolder) -> tuple[str, list[list[str]]]:
    """(what the probe read, its rows) from RUN/probe.json; ("", []) without one."""
    record = read_json(run.probe_result)
    rows = []
    for r in record.get("rows", []):
        try:
            rows.append(
                [str(r["source"]), str(r["dim"]), f"{r['linear']['top1']:.1f}",
                 f"{r['knn']['top1']:.1f}"]
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            continue
    pool = (
        record.get("probe", {}).get("pool", "?") if isinstance(record.get("probe"), dict) else "?"
    )
    about = f"{pool} features, {record.get('num_train', '?')} train / {record.get('num_test', '?')} test images"
    return (about, rows) if rows else ("", [])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]


def model_card(
    source: ExportSource,
    target: Target,
    story: RunStory,
    written: Written,
    version: str,
    commit: str,
) -> str:
    """The README.md text (Hugging Face model-card front matter, then Markdown)."""
    run = RunFolder.of_checkpoint(source.path).root.name
    name = source.path.stem if source.kind == "official" else run
    pre = source.preprocess
    lines = [
        "---",
        f"library_name: {LIBRARY[target]}",
        "tags: [maelab, mae, masked-autoencoder, image-feature-extraction]",
        "---",
        "",
        f"# {name}: a masked-autoencoder ViT exported by maelab",
        "",
        f"Exported from `{source.path}` ({source.kind} checkpoint) with maelab {version} "
        f"(commit {commit[:12]}).",
        "",
        "## Load",
        "",
        "```python",
        *written.code,
        "```",
        "",
        *[f"{note[:1].upper()}{note[1:]}." for note in written.notes],
        f"Inputs: {pre.image_size} x {pre.image_size} px, {pre.channels} channel(s), scaled to "
        f"[0, 1] and standardised with mean {_floats(pre.mean)} and std {_floats(pre.std)}.",
    ]
    if target == "hf":
        lines += [
            "`ViTMAEModel` masks and shuffles patches as in pretraining: with `mask_ratio=0.0` "
            "(set in an encoder-only folder) it keeps every patch, and "
            "`noise=torch.arange(L).expand(N, L)` (L patches) keeps them in raster order; the "
            "cls token is `last_hidden_state[:, 0]`.",
        ]
    lines += ["", "## Training", "", *_table(["", ""], [list(r) for r in story.rows])]
    if story.probe:
        lines += [
            "",
            f"## Frozen-feature probe ({story.probe_about})",
            "",
            *_table(["features", "dim", "linear top-1 %", "k-NN top-1 %"], story.probe),
        ]
    return "\n".join(lines) + "\n"


def _count(n: float, noun: str) -> str:
    return f"{n:g} {noun}{'' if n == 1 else 's'}"


def _floats(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"
