"""Every block of migration_guides/elevenlabs.md runs, in order, against local ElevenLabs and Gradium fronts.

The guide's own "How these examples run" paragraph is the contract: a folder with ``call.wav`` and ``call.ulaw``;
``SPEECH_API_URL`` is the front's address; ``ELEVENLABS_API_KEY`` / ``GRADIUM_API_KEY`` hold the keys; a block whose
info string names a file is that file; ``sh`` blocks are speechbridge commands run in-process, the ``text`` block after
one is its stderr (all run by :mod:`speechbridge.testing.guides`); the speechbridge blocks run again on Gradium with the
guide's Gradium config.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from speechbridge_elevenlabs.migrate import migrate_elevenlabs

from speechbridge.errors import SpeechBridgeError
from speechbridge.testing import SpeechSample, word_overlap
from speechbridge.testing.guides import Block, BlockFailed, MigrationGuide, migration_guide, read_blocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
pytest.importorskip("elevenlabs")

GUIDE = Path(__file__).resolve().parents[3] / "migration_guides" / "elevenlabs.md"
BLOCKS = read_blocks(GUIDE)


def check_output(guide: MigrationGuide, block: Block, printed: str) -> None:
    """What each kind of example must print: the words of the call, the stream's turn events, files it wrote."""
    words = guide.sample.words
    if "AuthenticationError" in block.code:
        assert printed.startswith("refused:"), printed
    elif "mulaw_8000" in block.code:
        lines = printed.splitlines()
        assert word_overlap(words, lines[0]) >= 0.8, printed
        assert re.fullmatch(r"[1-9]\d* bytes of mulaw_8000 to play into the call", lines[1]), printed
    elif "wrote " in block.code:
        names = re.findall(r"\b[\w.]+\.(?:wav|raw)\b", printed)
        assert names, printed
        for name in names:
            assert (guide.folder / name).stat().st_size > 1000, f"{block.where}: {name} holds no audio"
    else:
        finals = (
            " ".join(line.split(":", 1)[1] for line in printed.splitlines() if line.startswith("final:"))
            or printed.split("\n", 1)[0]
        )
        assert word_overlap(words, finals) >= 0.9, f"{block.where} printed {printed}"
        if "interim" in block.code:
            assert "interim:" in printed, printed
            assert "end of turn" in printed or guide.on_gradium, printed  # see the guide: semantic turns


@pytest.fixture
def guide(tmp_path: Path, speech_sample: SpeechSample) -> Iterator[MigrationGuide]:
    pytest.importorskip("speechbridge_gradium")
    with migration_guide("elevenlabs", BLOCKS, tmp_path, speech_sample, check_output) as guide:
        yield guide


def test_the_guide_has_every_kind_of_example():
    kinds = {(block.lang, block.file) for block in BLOCKS}
    assert {("python", None), ("toml", "speechbridge.toml"), ("json", "options.json"), ("sh", None)} <= kinds
    assert sum("elevenlabs" in block.imports for block in BLOCKS) >= 3
    assert sum(block.is_speechbridge for block in BLOCKS) >= 4
    assert BLOCKS[-1].section == "Switching that code to Gradium" and BLOCKS[-1].lang == "toml"


def test_the_gradium_config_is_the_one_migrate_prints():
    options = next(block for block in BLOCKS if block.file == "options.json")
    note = migrate_elevenlabs(json.loads(options.code)).notes[-1]
    assert tomllib.loads(note.split("\n\n", 1)[1]) == tomllib.loads(BLOCKS[-1].code)


def test_every_block_runs_against_the_elevenlabs_front(guide: MigrationGuide):
    guide.run_on_vendor()


def test_the_speechbridge_blocks_run_unchanged_on_gradium(guide: MigrationGuide):
    guide.run_speechbridge_blocks_on_gradium()


def test_a_block_that_fails_fails_the_test(guide: MigrationGuide):
    guide.use(guide.vendor_url)
    broken = Block("python", None, 'from speechbridge import transcribe_file\ntranscribe_file("missing.wav")\n', 1, "x")
    with pytest.raises(SpeechBridgeError, match=r"missing\.wav"):
        guide.runner.run(broken)
    silent = Block("python", None, "from speechbridge import transcribe_file\n", 1, "x")
    with pytest.raises(BlockFailed, match="printed nothing"):
        guide.runner.run(silent)
    wrong = Block(
        "python", None, 'import sys\nfrom speechbridge import Transcript\nprint("final: nothing heard")\n', 1, "x"
    )
    with pytest.raises(AssertionError, match="printed final: nothing heard"):
        guide.runner.run(wrong)
    guide.runner.run(Block("json", "options.json", '{"voice_id": "21m00Tcm4TlvDq8ikWAM", "next_text": "x"}\n', 1, "x"))
    guide.runner.run(Block("sh", None, "speechbridge migrate elevenlabs options.json > speechbridge.toml\n", 1, "x"))
    with pytest.raises(BlockFailed, match="the command printed"):
        guide.runner.run(Block("text", None, "not migrated: nothing\n", 1, "x"))
    with pytest.raises(BlockFailed, match="the command wrote other tables"):
        guide.runner.run(Block("toml", "speechbridge.toml", '[tts]\nprovider = "elevenlabs"\n', 1, "x"))
