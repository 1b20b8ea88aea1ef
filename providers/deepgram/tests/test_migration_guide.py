"""Every block of migration_guides/deepgram.md runs, in order, against local Deepgram and Gradium fronts.

The guide's own "How these examples run" paragraph is the contract: a folder with ``call.wav`` and ``call.ulaw``;
``SPEECH_API_URL`` is the front's address; ``DEEPGRAM_API_KEY`` / ``GRADIUM_API_KEY`` hold the keys; a block whose
info string names a file is that file; ``sh`` blocks are speechbridge commands run in-process, the ``text`` block after
one is its stderr; the speechbridge blocks run again on Gradium with the guide's Gradium config.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from speechbridge_deepgram.server import make_app as deepgram_app

from speechbridge import cli
from speechbridge.audio import PCMAudio, encode, resample, ulaw_encode
from speechbridge.config import load_config
from speechbridge.errors import SpeechBridgeError
from speechbridge.testing import ScriptedSTT, ScriptedTTS, SpeechSample, ThreadedServer, word_overlap

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GUIDE = Path(__file__).resolve().parents[3] / "migration_guides" / "deepgram.md"
DEEPGRAM_KEY, GRADIUM_KEY = "dg-guide-key", "gd-guide-key"
FENCE = re.compile(r"^```(\S*)(?: (\S+))?\s*$")
TRAILING_SILENCE_S = 1.5


@attrs.frozen
class Block:
    lang: str
    file: str | None
    code: str
    line: int
    section: str

    @property
    def where(self) -> str:
        return f"{GUIDE.name}:{self.line} ({self.section})"

    @property
    def is_speechbridge(self) -> bool:
        return self.lang == "python" and "from speechbridge" in self.code and "from deepgram" not in self.code


def blocks_of(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, with their info string's language and file, line and ``##`` section."""
    blocks: list[Block] = []
    section, opened, lines = "", None, []
    for number, line in enumerate(text.splitlines(), start=1):
        if opened is None:
            if line.startswith("## "):
                section = line[3:].strip()
            match = FENCE.match(line)
            if match:
                opened, lines = (match.group(1), match.group(2), number + 1), []
        elif line.startswith("```"):
            blocks.append(Block(opened[0], opened[1], "\n".join(lines) + "\n", opened[2], section))
            opened = None
        else:
            lines.append(line)
    assert opened is None, f"{GUIDE.name}: a block opened at line {opened[2]} is never closed"
    return blocks


BLOCKS = blocks_of(GUIDE.read_text(encoding="utf-8"))


@attrs.define
class Guide:
    """The folder the guide runs in, the two fronts, and what the last command wrote."""

    folder: Path
    sample: SpeechSample
    deepgram_url: str
    gradium_url: str
    monkeypatch: pytest.MonkeyPatch
    last_stderr: str | None = None
    written_by_command: set[str] = attrs.Factory(set)

    def run(self, block: Block) -> None:
        runner = getattr(self, f"_run_{block.lang}", None)
        assert runner is not None, f"{block.where}: no runner for {block.lang!r} blocks: keep it out of the guide"
        runner(block)

    def _write(self, block: Block) -> None:
        assert block.file is not None
        (self.folder / block.file).write_text(block.code, encoding="utf-8")

    def _run_json(self, block: Block) -> None:
        json.loads(block.code)
        if block.file:
            self._write(block)

    def _run_toml(self, block: Block) -> None:
        tables = tomllib.loads(block.code)
        assert block.file == "speechbridge.toml", f"{block.where}: a toml block names the file it is"
        if block.file in self.written_by_command:
            written = tomllib.loads((self.folder / block.file).read_text(encoding="utf-8"))
            assert written == tables, f"{block.where}: the command wrote other tables: {written}"
            self.written_by_command.discard(block.file)
        self._write(block)
        assert load_config(self.folder / block.file).check() == [], block.where

    def _run_sh(self, block: Block) -> None:
        for line in filter(None, (each.strip() for each in block.code.splitlines())):
            words = shlex.split(line)
            assert words[0] == "speechbridge", f"{block.where}: only speechbridge commands run here: {line}"
            target = None
            if ">" in words:
                words, target = words[: words.index(">")], words[words.index(">") + 1]
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(words[1:])
            assert code == 0, f"{block.where}: {line} exited with {code}: {err.getvalue()}"
            if target is not None:
                (self.folder / target).write_text(out.getvalue(), encoding="utf-8")
                self.written_by_command.add(target)
            self.last_stderr = err.getvalue()

    def _run_text(self, block: Block) -> None:
        assert self.last_stderr is not None, f"{block.where}: a text block follows the command whose stderr it shows"
        assert block.code.strip() == self.last_stderr.strip(), f"{block.where}: the command printed {self.last_stderr}"
        self.last_stderr = None

    def _run_python(self, block: Block) -> None:
        out = io.StringIO()
        before = {path.name: path.stat().st_mtime_ns for path in self.folder.iterdir()}
        with contextlib.redirect_stdout(out):
            exec(compile(block.code, block.where, "exec"), {"__name__": "__main__"})
        printed = out.getvalue()
        assert printed.strip(), f"{block.where} printed nothing"
        check_output(block, printed, self)
        changed = [path for path in self.folder.iterdir() if before.get(path.name) != path.stat().st_mtime_ns]
        for path in changed:
            assert path.stat().st_size > 0, f"{block.where} wrote an empty {path.name}"

    @property
    def vendor(self) -> str:
        return "gradium" if os.environ.get("SPEECH_API_URL") == self.gradium_url else "deepgram"

    def use(self, url: str) -> None:
        self.monkeypatch.setenv("SPEECH_API_URL", url)


def check_output(block: Block, printed: str, guide: Guide) -> None:
    """What each kind of example must print: the words of the call, the stream's turn events, files it wrote."""
    words = guide.sample.words
    if "AuthenticationError" in block.code:
        assert printed.startswith("refused:"), printed
    elif "mulaw_8000" in block.code:
        lines = printed.splitlines()
        assert word_overlap(words, lines[0]) >= 0.8, printed
        assert re.fullmatch(r"[1-9]\d* bytes of mulaw_8000 to play into the call", lines[1]), printed
    elif "wrote " in block.code:
        for name in re.findall(r"\b[\w.]+\.(?:wav|raw)\b", printed):
            assert (guide.folder / name).stat().st_size > 1000, f"{block.where}: {name} holds no audio"
        assert (guide.folder / "thanks.wav").read_bytes()[:4] == b"RIFF"
    else:
        finals = (
            " ".join(line.split(":", 1)[1] for line in printed.splitlines() if line.startswith("final:"))
            or printed.split("\n", 1)[0]
        )
        assert word_overlap(words, finals) >= 0.9, f"{block.where} printed {printed}"
        if "interim" in block.code:
            assert "interim:" in printed and "speech started at" in printed, printed
            assert "end of turn" in printed or guide.vendor == "gradium", printed  # see the guide: semantic turns


@pytest.fixture
def guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speech_sample: SpeechSample) -> Iterator[Guide]:
    gradium_server = pytest.importorskip("speechbridge_gradium.server")
    audio = speech_sample.audio
    call = PCMAudio(audio.data + bytes(audio.format.bytes_for(TRAILING_SILENCE_S)), audio.sample_rate)
    (tmp_path / "call.wav").write_bytes(encode(resample(call, 16000), "wav"))
    (tmp_path / "call.ulaw").write_bytes(ulaw_encode(resample(call, 8000).data))
    for name in ("SPEECHBRIDGE_CONFIG", "SPEECHBRIDGE_STT", "SPEECHBRIDGE_TTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEEPGRAM_API_KEY", DEEPGRAM_KEY)
    monkeypatch.setenv("GRADIUM_API_KEY", GRADIUM_KEY)
    monkeypatch.chdir(tmp_path)

    def backends() -> tuple[ScriptedSTT, ScriptedTTS]:
        return ScriptedSTT.for_audio(call, speech_sample.words), ScriptedTTS()

    deepgram_stt, deepgram_tts = backends()
    gradium_stt, gradium_tts = backends()
    with (
        ThreadedServer(deepgram_app(deepgram_stt, deepgram_tts, api_keys=[DEEPGRAM_KEY])) as deepgram,
        ThreadedServer(gradium_server.make_app(gradium_stt, gradium_tts, api_keys=[GRADIUM_KEY])) as gradium,
    ):
        yield Guide(tmp_path, speech_sample, deepgram.url, gradium.url + "/api", monkeypatch)


def test_the_guide_has_every_kind_of_example():
    kinds = {(block.lang, block.file) for block in BLOCKS}
    assert {("python", None), ("toml", "speechbridge.toml"), ("json", "options.json"), ("sh", None)} <= kinds
    assert any("from deepgram" in block.code for block in BLOCKS)
    assert sum(block.is_speechbridge for block in BLOCKS) >= 4
    assert BLOCKS[-1].section == "Switching that code to Gradium" and BLOCKS[-1].lang == "toml"


def test_every_block_runs_against_the_deepgram_front(guide: Guide):
    guide.use(guide.deepgram_url)
    for block in BLOCKS:
        guide.run(block)
    config = load_config(guide.folder / "speechbridge.toml")
    assert (config.select("stt").provider, config.select("tts").provider) == ("gradium", "gradium")


def test_the_speechbridge_blocks_run_unchanged_on_gradium(guide: Guide):
    gradium_config = [block for block in BLOCKS if block.lang == "toml" and block.section.startswith("Switching")]
    assert len(gradium_config) == 1
    guide.use(guide.gradium_url)
    guide.run(gradium_config[0])
    for block in BLOCKS:
        if block.is_speechbridge:
            guide.run(block)


def test_a_block_that_fails_fails_the_test(guide: Guide):
    guide.use(guide.deepgram_url)
    broken = Block("python", None, 'from speechbridge import transcribe_file\ntranscribe_file("missing.wav")\n', 1, "x")
    with pytest.raises(SpeechBridgeError, match=r"missing\.wav"):
        guide.run(broken)
    with pytest.raises(AssertionError, match="no runner for 'bash' blocks"):
        guide.run(Block("bash", None, "ls\n", 1, "x"))
    guide.run(Block("json", "options.json", '{"model": "nova-3", "tag": "x"}\n', 1, "x"))
    guide.run(Block("sh", None, "speechbridge migrate deepgram options.json > speechbridge.toml\n", 1, "x"))
    with pytest.raises(AssertionError, match="the command printed"):
        guide.run(Block("text", None, "not migrated: nothing\n", 1, "x"))
    with pytest.raises(AssertionError, match="the command wrote other tables"):
        guide.run(Block("toml", "speechbridge.toml", '[stt]\nprovider = "deepgram"\n', 1, "x"))
