"""`maelab export`: a checkpoint as a Hugging Face or timm folder."""

from __future__ import annotations

import argparse


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a checkpoint as a Hugging Face (transformers) or timm folder",
        description="Write any checkpoint maelab reads (a pretraining run, a fine-tuned run, "
        "official MAE weights) as a folder another library loads: --to hf gives a "
        "save_pretrained folder (ViTMAEForPreTraining, or ViTMAEModel for an encoder alone) "
        "with preprocessor_config.json; --to timm gives model.safetensors and timm's config.json "
        "(pretrained_cfg). Both get a model card, README.md. The run's mean and std are read from "
        "its data; data.* overrides point at data that has moved.",
    )
    p.add_argument("--ckpt", required=True, help="RUN/checkpoints/last.pt or an official .pth")
    p.add_argument("--to", required=True, choices=["hf", "timm"], help="the library to load it")
    p.add_argument("--out", required=True, help="a new or empty folder")
    p.add_argument("overrides", nargs="*", metavar="data.key=value", help="data overrides")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from maelab.export import export_checkpoint

    done = export_checkpoint(args.ckpt, args.to, args.out, args.overrides)
    for note in done.written.notes:
        print(note)
    print(f"wrote {done.out} ({', '.join(done.files)}) in {done.seconds:.1f} s; load it with:")
    for line in done.written.code:
        print(f"  {line}")
    return 0
