"""`maelab demo --quick` end to end: every report section and figure is present."""

import re

import pytest

from maelab.cli import main
from maelab.report import SECTION_IDS

SMALL_GRID = (
    "sweep.grids=[{mask.ratio: [0.5, 0.75], mask.unit: [4, 8]}, {objective.name: [umae]}, "
    "{model.decoder_depth: [1]}]"
)
FIGURES = [
    "training loss per run",
    "original | masked | reconstruction",
    "by mask ratio x mask unit",
    "one line per mask unit",
    "eigenvalues of the feature covariance",
    "collapse numbers and probes",
    "by decoder depth",
    "Q1 position",
    "Q2 low rank",
    "Q3 stability",
    "Q5 interpolation",
]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    args = ["demo", "--quick", "--quiet", "--out", str(out), SMALL_GRID]
    assert main(args) == 0
    return out


@pytest.mark.slow
def test_demo_quick_report_has_every_section_and_figure(demo_dir, capsys):
    page = (demo_dir / "report.html").read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page, sid
    alts = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', page)
    for caption in FIGURES:
        assert any(caption in a for a in alts), caption
    # every paper has computed verdicts, and each names its measurement
    for paper in ("Kong et al. 2023", "Zhang, Wang, Wang 2022", "Cao, Xu, Clifton 2022"):
        assert f"<td>{paper}</td>" in page
    assert page.count('class="agrees"') + page.count('class="disagrees"') >= 10
    assert "<i>baseline: random init</i>" in page and "<i>baseline: pixels</i>" in page


@pytest.mark.slow
def test_rerun_skips_and_report_cli_on_one_run(demo_dir, capsys):
    assert main(["sweep", "-c", str(demo_dir / "base_config.yaml"), "--grid", "mask.ratio=0.5,0.75",
                 "--grid", "mask.unit=4,8", "--grid", "objective.name=mae", "--grid",
                 "model.decoder_depth=2", "--seeds", "0", "--out", str(demo_dir), "--dry-run"]) == 0  # fmt: skip
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 4 and all(line.startswith("done") for line in listing)
    run = next(p for p in demo_dir.iterdir() if p.name.startswith("mask.ratio=0.5__mask.unit=4"))
    assert main(["report", str(run), "--out", str(run / "r.html")]) == 0
    page = (run / "r.html").read_text()
    assert 'id="training"' in page and "reconstruction" in page
