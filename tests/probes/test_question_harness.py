"""`maelab analyze probes` with Cao's question experiments: a fake question function with a known
QuestionResult goes through the registry, the runner, verdicts.json (bootstrap over images,
n_seeds = 1) and the report's Cao section; official encoder-only weights (released key layout,
reduced size) probe grey digits as 3-channel ImageNet-normalised images and skip the decoder's
questions with one line."""

import argparse
import json

import numpy as np
import pytest
import torch

from maelab import verdicts as vd
from maelab.cli import main
from maelab.data.folder import IMAGENET_MEAN
from maelab.models.interop import encoder_state_dict
from maelab.models.mae import MAEArch, MaskedAutoencoder
from maelab.probes import QUESTIONS, Question, register_question
from maelab.probes.questions import QuestionResult
from maelab.probes.runner import probe_checkpoint
from maelab.report import build_report
from tests.evaluation.conftest import pretrain_tiny

SEEN: dict[str, object] = {}


def fake_q1(model, images, max_images: int = 64) -> QuestionResult:
    """A known answer: treated - control = 1 + a small, image-dependent wobble per image."""
    n = min(len(images), max_images)
    SEEN.update(channels=images.channels, size=images.image_size, mean=images.mean, n=n)
    wobble = images.images[:n].float().mean(dim=(1, 2, 3)) / 255.0 * 0.1
    paired = (1.0 + wobble - wobble.mean()).tolist()
    return QuestionResult("Q1", "a fake effect of one", "treated", "control", 1.0, 0.0, paired,
                          "increase", margin=0.1, details={"n": float(n)})  # fmt: skip


def fake_q5(model, images) -> QuestionResult:
    """A null against a predicted increase: equivalence inside the margin -> disagrees."""
    g = np.random.default_rng(0)
    paired = (g.normal(0.0, 0.01, len(images))).tolist()
    return QuestionResult("Q5", "a fake null", "t", "c", 0.5, 0.5, paired, "increase", 0.5)


def fake_q3(model, images, control, fit_images=None, seed: int = 1) -> QuestionResult:
    """Receives the untrained control of the same architecture and other (fit) images."""
    assert control is not model and control.arch == model.arch and seed == 0
    assert not torch.equal(control.blocks[0].attn.qkv.weight, model.blocks[0].attn.qkv.weight)
    SEEN.update(fit=len(fit_images))
    return QuestionResult("Q3", "a fake with a control model", "t", "c", 0.0, 0.0, [0.1, -0.1],
                          "none", 0.5)  # fmt: skip


@pytest.fixture()
def fakes(monkeypatch):
    saved = dict(QUESTIONS)
    register_question(Question("Q1", "fake", fake_q1))
    register_question(Question("Q5", "fake", fake_q5, needs_decoder=True))
    register_question(Question("Q3", "fake", fake_q3))
    register_question(Question("Q2", "not written yet", None, needs_decoder=True))
    yield
    QUESTIONS.clear()
    QUESTIONS.update(saved)


def test_fake_question_reaches_verdicts_and_report(tmp_path, fakes, capsys):
    ckpt = pretrain_tiny(tmp_path / "run")
    out = tmp_path / "run" / "probes"
    args = ["analyze", "probes", "--ckpt", str(ckpt), "--probe", "Q1", "--probe", "Q5",
            "--probe", "Q4", "--probe", "Q2", "--probe", "Q3", "--max-images", "48",
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Q4: skipped, measured over trained runs" in text
    assert "Q2: skipped, no experiment function registered" in text
    record = vd.read_verdicts(out)
    assert "n_seeds = 1" in record.ci_method and "bootstrap" in record.ci_method
    rows = {v.claim: v for v in record.verdicts}
    q1, q5 = rows["Q1: a fake effect of one"], rows["Q5: a fake null"]
    assert q1.n_seeds == 1 and q1.per_seed == (pytest.approx(1.0),) and q1.control == 0.0
    assert q1.outcome == "agrees" and 0.99 < q1.ci[0] < 1.0 < q1.ci[1] < 1.01
    assert q5.outcome == "inconclusive" and -0.5 < q5.ci[0] < q5.ci[1] < 0.5
    assert q1.p_holm is not None and q1.level is not None
    assert SEEN["n"] == 48 and SEEN["channels"] == 3 and SEEN["fit"] == 48
    q3 = rows["Q3: a fake with a control model"]  # [-0.1, 0.1] lies inside the margin 0.5
    assert q3.outcome == "inconclusive" and q3.ci == (pytest.approx(-0.1), pytest.approx(0.1))
    assert q3.reason == "readout cannot see the effect"  # a null, no positive control
    stored = json.loads((out / "question_Q1.json").read_text())
    assert len(stored["result"]["paired"]) == 48
    report = build_report(tmp_path / "run", tmp_path / "report.html")
    html = report.path.read_text()
    assert "a fake effect of one" in html and '<section id="verdict-rows">' in html
    shown = {v.claim: v.outcome for v in report.verdicts}  # as the file says, nothing more
    assert shown == {v.claim: v.outcome for v in record.verdicts}
    assert shown["Q1: a fake effect of one"] == "agrees"
    assert shown["Q5: a fake null"] == "inconclusive"


SMALL = MAEArch(img_size=16, patch_size=4, in_chans=3, embed_dim=64, depth=2, num_heads=1,
                decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=1)  # fmt: skip


def official_encoder(path, arch: MAEArch = SMALL):
    """Encoder-only weights in the released layout: {"model": sd, "args": Namespace}."""
    torch.manual_seed(0)
    sd = encoder_state_dict(MaskedAutoencoder(arch))
    torch.save({"model": sd, "args": argparse.Namespace(model="mae_vit")}, path)
    return path


def test_official_encoder_only_on_grey_digits(tmp_path, fakes):
    path = official_encoder(tmp_path / "mae_pretrain_vit_small.pth")
    run = probe_checkpoint(path, tmp_path / "out", data_overrides=["data.name=digits"],
                           max_images=24)  # fmt: skip
    assert SEEN["channels"] == 3 and SEEN["size"] == 16 and SEEN["mean"] == IMAGENET_MEAN
    skipped = "\n".join(run.skipped)
    for name in ("low_rank", "interpolation", "Q5"):
        assert f"{name}: skipped, needs the decoder" in skipped
    assert "identifiability: skipped, needs ground-truth latents" in skipped
    assert set(run.records) == {"position", "stability"} and set(run.questions) == {"Q1", "Q3"}
    claims = [v.claim for v in vd.read_verdicts(run.verdicts).verdicts]
    assert claims == ["Q1: a fake effect of one", "Q3: a fake with a control model"]


def test_official_weights_need_named_images(tmp_path, capsys):
    path = official_encoder(tmp_path / "mae_pretrain_vit_small.pth")
    assert main(["analyze", "probes", "--ckpt", str(path), "--quiet"]) == 2
    assert "data.name=digits" in capsys.readouterr().err


@pytest.mark.slow
def test_official_vit_base_layout(tmp_path, fakes):
    """ViT-B/16 at 224 px in the released encoder-only layout, on digits resized to 224 px."""
    arch = MAEArch(img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12,
                   num_heads=12, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16)  # fmt: skip
    path = official_encoder(tmp_path / "mae_pretrain_vit_base.pth", arch)
    run = probe_checkpoint(path, tmp_path / "out", ["position", "Q1", "Q5"],
                           data_overrides=["data.name=digits", "data.num_test=40"],
                           max_images=4)  # fmt: skip
    assert SEEN["size"] == 224 and SEEN["channels"] == 3 and SEEN["n"] == 4
    assert set(run.records) == {"position"} and run.skipped == [
        "Q5: skipped, needs the decoder; this checkpoint is encoder-only"
    ]
    assert len(run.records["position"]["result"]["coordinate_r2"]) == 13


def test_registered_experiments_and_their_skips(tmp_path, capsys):
    """The real table: Q1/Q3/Q5 run on a synthetic checkpoint, Q2 only on the low-rank family
    (one line otherwise), Q4 from a sweep; a Q5 model worse than the patch mean is not decided."""
    from maelab.probes.runner import regime_reached

    assert all(QUESTIONS[q].run is not None for q in ("Q1", "Q2", "Q3", "Q5"))
    ckpt = pretrain_tiny(tmp_path / "run")
    args = ["analyze", "probes", "--ckpt", str(ckpt), "--probe", "Q2", "--probe", "Q1",
            "--max-images", "32", "--quiet"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Q2: skipped, needs data.name=lowrank" in text
    claims = [v.claim for v in vd.read_verdicts(tmp_path / "run" / "probes").verdicts]
    assert len(claims) == 1 and claims[0].startswith("Q1: ")
    weak = QuestionResult("Q5", "c", "m", "c", 0.0, 0.0, [0.0, 0.0], "none", 0.02,
                          details={"model_base_error": 1.3})  # fmt: skip
    assert not regime_reached(weak)
    assert regime_reached(QuestionResult("Q1", "c", "m", "c", 0.0, 0.0, [0.0, 0.1], "none", 0.1))
