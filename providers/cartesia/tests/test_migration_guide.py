"""Every block of migration_guides/cartesia.md runs, in order, against local Cartesia and Gradium fronts.

The guide's own "How these examples run" paragraph is the contract: a folder with ``call.wav`` and ``call.ulaw``;
``SPEECH_API_URL`` is the front's address; ``CARTESIA_API_KEY`` / ``GRADIUM_API_KEY`` hold the keys; the blocks run
with :mod:`speechbridge.testing.guides`; the speechbridge blocks run again on Gradium with the guide's Gradium config.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from speechbridge.errors import AuthenticationError
from speechbridge.testing import SpeechSample, word_overlap
from speechbridge.testing.guides import Block, BlockFailed, MigrationGuide, migration_guide, read_blocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GUIDE = Path(__file__).resolve().parents[3] / "migration_guides" / "cartesia.md"
BLOCKS = read_blocks(GUIDE)


def check_output(guide: MigrationGuide, block: Block, printed: str) -> None:
    """What each kind of example must print: the words of the call, the stream's events, the audio it wrote."""
    words, lines = guide.sample.words, printed.splitlines()
    if "AuthenticationError" in block.code:
        assert printed.startswith("refused:"), printed
    elif "mulaw_8000" in block.code:
        assert word_overlap(words, lines[0]) >= 0.8, printed
        assert re.fullmatch(r"[1-9]\d* bytes of mulaw_8000 to play into the call", lines[1]), printed
    elif "multiplex" in block.code:
        assert re.fullmatch(r"wrote [1-9]\d* and [1-9]\d* bytes of pcm_16000", printed.strip()), printed
    elif "wrote " in block.code:
        assert printed.strip() == "wrote thanks.wav and reply.raw", printed
        assert (guide.folder / "thanks.wav").read_bytes()[:4] == b"RIFF"
        assert (guide.folder / "reply.raw").stat().st_size > 16000 * 2 * 0.5
    else:
        finals = " ".join(line.split(":", 1)[1] for line in lines if line.startswith("final:")) or lines[0]
        assert word_overlap(words, finals) >= 0.9, f"{block.where} printed {printed}"
        if "interim" in block.code:
            assert "interim:" in printed and "finalized" in lines, printed
        else:
            timed = [line for line in lines[1:] if re.fullmatch(r"\S+ \d+\.\d\d-\d+\.\d\d", line)]
            assert len(timed) == len(words), f"{block.where} printed no word timings: {printed}"


@pytest.fixture
def guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speech_sample: SpeechSample) -> Iterator[MigrationGuide]:
    pytest.importorskip("speechbridge_gradium")
    pytest.importorskip("cartesia")
    monkeypatch.delenv("CARTESIA_BASE_URL", raising=False)
    with migration_guide("cartesia", BLOCKS, tmp_path, speech_sample, check_output) as guide:
        yield guide


def test_the_guide_has_every_kind_of_example():
    kinds = {(block.lang, block.file) for block in BLOCKS}
    assert kinds == {
        ("python", None),
        ("json", "options.json"),
        ("sh", None),
        ("text", None),
        ("toml", "speechbridge.toml"),
    }
    assert sum("cartesia" in block.imports for block in BLOCKS) == 3
    assert sum(block.is_speechbridge for block in BLOCKS) == 6
    assert BLOCKS[-1].section == "Switching that code to Gradium" and BLOCKS[-1].lang == "toml"


def test_every_block_runs_against_the_cartesia_front(guide: MigrationGuide):
    guide.run_on_vendor()


def test_the_speechbridge_blocks_run_unchanged_on_gradium(guide: MigrationGuide):
    guide.run_speechbridge_blocks_on_gradium()


def test_the_checks_fail_on_wrong_output(guide: MigrationGuide):
    guide.use(guide.vendor_url)
    guide.runner.run(next(block for block in BLOCKS if block.lang == "toml"))
    batch = next(block for block in BLOCKS if block.is_speechbridge)
    with pytest.raises(AssertionError, match="printed no word timings"):
        check_output(guide, batch, guide.sample.text + "\n")
    with pytest.raises(AssertionError):
        check_output(guide, batch, "something else entirely\n")
    with pytest.raises(AuthenticationError):
        guide.runner.run(Block("python", None, batch.code.replace('"call.wav"', '"call.wav", api_key="x"'), 1, "x"))
    with pytest.raises(BlockFailed, match="printed nothing"):
        guide.runner.run(Block("python", None, "import speechbridge\n", 1, "x"))
