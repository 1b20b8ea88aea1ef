"""Run the code blocks of a markdown page, in order, in one folder: documentation whose examples are tested.

>>> runner = GuideRunner(Path("work"))
>>> runner.run_all(read_blocks(Path("docs/guide.md")))

A block's info string is its language and, optionally, the file it is (```` ```toml speechbridge.toml ````):

- ``python``: executed as ``__main__`` in the folder; it must print something (``check_output`` judges what);
- ``json`` / ``toml``: parsed; with a file name, written to the folder; ``speechbridge.toml`` is then loaded and every
  provider it configures is made; when a command just wrote that file, the block must match what it wrote;
- ``sh``: ``speechbridge`` commands, one a line, run in-process (``> file`` writes stdout to a file);
- ``text``: what the command just before printed on stderr.

Any other language fails, so a guide holds only examples that run. A failing block raises :class:`BlockFailed`
naming the page, line and section; an exception raised by a ``python`` block propagates as it is.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

import attrs

from .. import cli
from ..audio import PCMAudio, encode, resample, ulaw_encode
from ..config import load_config
from ..plugins import get_registry
from .samples import SpeechSample
from .scripted import ScriptedSTT, ScriptedTTS
from .servers import ThreadedServer

__all__ = [
    "Block",
    "BlockFailed",
    "GuideRunner",
    "MigrationGuide",
    "blocks_of",
    "migration_guide",
    "read_blocks",
    "serve_fronts_for_guide",
]

TRAILING_SILENCE_S: Final = 1.5  # after the call's speech, so streams see the turn end
ENVIRONMENT: Final = ("SPEECHBRIDGE_CONFIG", "SPEECHBRIDGE_STT", "SPEECHBRIDGE_TTS")
FENCE: Final = re.compile(r"^(`{3,})([^`\s]*)(?: (\S+))?\s*$")
CONFIG_FILE: Final = "speechbridge.toml"


class BlockFailed(AssertionError):
    """A block of a guide did not run as the guide says."""


@attrs.frozen
class Block:
    """A fenced block: its language, the file it is (if named), its code, first line and ``##`` section."""

    lang: str
    file: str | None
    code: str
    line: int
    section: str
    source: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line} ({self.section})"

    @property
    def imports(self) -> frozenset[str]:
        """The top-level modules a ``python`` block imports."""
        if self.lang != "python":
            return frozenset()
        names: set[str] = set()
        for node in ast.walk(ast.parse(self.code)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        return frozenset(names)

    @property
    def is_speechbridge(self) -> bool:
        """A ``python`` block using speechbridge and the standard library only (no vendor SDK)."""
        imports = self.imports
        return "speechbridge" in imports and all(
            name == "speechbridge" or name in sys.stdlib_module_names for name in imports
        )


def blocks_of(text: str, source: str = "") -> list[Block]:
    """The fenced blocks of a markdown text, in order; ``source`` names the page in :attr:`Block.where`."""
    blocks: list[Block] = []
    lines: list[str] = []
    section = ""
    opened: tuple[str, str, str | None, int] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if opened is None:
            if line.startswith("## "):
                section = line[3:].strip()
            match = FENCE.match(line)
            if match:
                opened, lines = (match.group(1), match.group(2), match.group(3), number + 1), []
        elif line.startswith(opened[0]) and not line.strip("`").strip():
            blocks.append(Block(opened[1], opened[2], "\n".join(lines) + "\n", opened[3], section, source))
            opened = None
        else:
            lines.append(line)
    if opened is not None:
        raise BlockFailed(f"{source}: the block opened at line {opened[3] - 1} is never closed")
    return blocks


def read_blocks(path: Path) -> list[Block]:
    """The fenced blocks of the markdown file at ``path``."""
    return blocks_of(path.read_text(encoding="utf-8"), path.name)


@attrs.define
class GuideRunner:
    """Runs blocks in ``folder``; ``check_output(block, printed)`` judges what a ``python`` block printed."""

    folder: Path
    check_output: Callable[[Block, str], None] | None = None
    last_stderr: str | None = attrs.field(default=None, init=False)
    written_by_command: set[str] = attrs.field(factory=set, init=False)

    def run_all(self, blocks: Iterable[Block]) -> None:
        """Run ``blocks`` in order."""
        for block in blocks:
            self.run(block)

    def run(self, block: Block) -> None:
        """Run one block in the folder."""
        runner: Callable[[Block], None] | None = getattr(self, f"_run_{block.lang}", None)
        if runner is None:
            raise BlockFailed(f"{block.where}: no runner for {block.lang!r} blocks: keep it out of the guide")
        with contextlib.chdir(self.folder):
            runner(block)

    def _write(self, block: Block) -> None:
        assert block.file is not None
        (self.folder / block.file).write_text(block.code, encoding="utf-8")

    def _run_json(self, block: Block) -> None:
        try:
            json.loads(block.code)
        except json.JSONDecodeError as error:
            raise BlockFailed(f"{block.where}: not valid JSON: {error}") from None
        if block.file:
            self._write(block)

    def _run_toml(self, block: Block) -> None:
        try:
            tables = tomllib.loads(block.code)
        except tomllib.TOMLDecodeError as error:
            raise BlockFailed(f"{block.where}: not valid TOML: {error}") from None
        if block.file is None:
            return
        if block.file in self.written_by_command:
            try:
                written = tomllib.loads((self.folder / block.file).read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as error:
                raise BlockFailed(f"{block.where}: the command wrote no TOML to {block.file}: {error}") from None
            _require(written == tables, block, f"the command wrote other tables: {written}")
            self.written_by_command.discard(block.file)
        self._write(block)
        if block.file == CONFIG_FILE:
            problems = load_config(self.folder / block.file).check()
            _require(not problems, block, f"the config does not make its providers: {problems}")

    def _run_sh(self, block: Block) -> None:
        for line in filter(None, (each.strip() for each in block.code.splitlines())):
            words = shlex.split(line)
            _require(words[0] == "speechbridge", block, f"only speechbridge commands run here: {line}")
            target = None
            if ">" in words:
                words, target = words[: words.index(">")], words[words.index(">") + 1]
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(words[1:])
            _require(code == 0, block, f"{line} exited with {code}: {err.getvalue()}")
            if target is not None:
                (self.folder / target).write_text(out.getvalue(), encoding="utf-8")
                self.written_by_command.add(target)
            self.last_stderr = err.getvalue()

    def _run_text(self, block: Block) -> None:
        _require(self.last_stderr is not None, block, "a text block follows the command whose stderr it shows")
        printed, self.last_stderr = self.last_stderr or "", None
        _require(block.code.strip() == printed.strip(), block, f"the command printed {printed}")

    def _run_python(self, block: Block) -> None:
        out = io.StringIO()
        before = {path.name: path.stat().st_mtime_ns for path in self.folder.iterdir()}
        with contextlib.redirect_stdout(out):
            exec(compile(block.code, block.where, "exec"), {"__name__": "__main__"})
        printed = out.getvalue()
        _require(bool(printed.strip()), block, "printed nothing")
        if self.check_output is not None:
            self.check_output(block, printed)
        for path in self.folder.iterdir():
            if before.get(path.name) != path.stat().st_mtime_ns:
                _require(path.stat().st_size > 0, block, f"wrote an empty {path.name}")


def _require(condition: bool, block: Block, problem: str) -> None:
    if not condition:
        raise BlockFailed(f"{block.where}: {problem}")


@contextlib.contextmanager
def serve_fronts_for_guide(folder: Path, sample: SpeechSample, keys: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The world a migration guide's examples run in, for as long as the block lasts.

    ``folder`` (made the working directory) gets ``call.wav`` (16 kHz) and ``call.ulaw`` (8 kHz mu-law): ``sample``
    followed by silence. For each ``front: key`` of ``keys``, ``<FRONT>_API_KEY`` is set and that front is served
    over scripted providers that hear ``sample``'s words and speak tones; yields each front's base URL. The
    environment and working directory are restored afterwards.
    """
    audio = sample.audio
    call = PCMAudio(audio.data + bytes(audio.format.bytes_for(TRAILING_SILENCE_S)), audio.sample_rate)
    (folder / "call.wav").write_bytes(encode(resample(call, 16000), "wav"))
    (folder / "call.ulaw").write_bytes(ulaw_encode(resample(call, 8000).data))
    saved_environment, saved_directory = dict(os.environ), Path.cwd()
    for name in ENVIRONMENT:
        os.environ.pop(name, None)
    os.environ.update({f"{front.upper()}_API_KEY": key for front, key in keys.items()})
    os.chdir(folder)
    registry = get_registry()
    try:
        with contextlib.ExitStack() as stack:
            urls = {}
            for front, key in keys.items():
                stt, tts = ScriptedSTT.for_audio(call, sample.words), ScriptedTTS()
                app = registry.front(front)(stt, tts, api_keys=[key])
                urls[front] = stack.enter_context(ThreadedServer(app, closing=(stt, tts))).url
            yield urls
    finally:
        os.chdir(saved_directory)
        os.environ.clear()
        os.environ.update(saved_environment)


@attrs.define
class MigrationGuide:
    """A vendor's migration guide, ready to run: its blocks, the folder of :func:`serve_fronts_for_guide` and the two
    fronts there, the vendor's and Gradium's. ``check_output(guide, block, printed)`` judges a ``python`` block.

    The guide's examples reach whichever front ``SPEECH_API_URL`` names: :meth:`use` sets it.
    """

    blocks: list[Block]
    folder: Path
    sample: SpeechSample
    vendor_url: str
    gradium_url: str
    check_output: Callable[[MigrationGuide, Block, str], None]
    runner: GuideRunner = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.runner = GuideRunner(self.folder, lambda block, printed: self.check_output(self, block, printed))

    def use(self, url: str) -> None:
        os.environ["SPEECH_API_URL"] = url  # serve_fronts_for_guide restores the environment afterwards

    @property
    def on_gradium(self) -> bool:
        """Whether the examples now run against the Gradium front."""
        return os.environ.get("SPEECH_API_URL") == self.gradium_url

    def run_on_vendor(self) -> None:
        """Every block, in order, against the vendor's front; the config the guide ends with must be Gradium's."""
        self.use(self.vendor_url)
        self.runner.run_all(self.blocks)
        config = load_config(self.folder / CONFIG_FILE)
        assert (config.select("stt").provider, config.select("tts").provider) == ("gradium", "gradium")

    def run_speechbridge_blocks_on_gradium(self) -> None:
        """The guide's one Gradium config, then every speechbridge block again, unchanged, against Gradium's front."""
        switches = [block for block in self.blocks if block.lang == "toml" and block.section.startswith("Switching")]
        assert len(switches) == 1, f"expected one 'Switching ...' config block, found {len(switches)}"
        self.use(self.gradium_url)
        self.runner.run_all([*switches, *(block for block in self.blocks if block.is_speechbridge)])


@contextlib.contextmanager
def migration_guide(
    vendor: str,
    blocks: list[Block],
    folder: Path,
    sample: SpeechSample,
    check_output: Callable[[MigrationGuide, Block, str], None],
) -> Iterator[MigrationGuide]:
    """``vendor``'s guide of ``blocks`` with its fronts served (keys ``<vendor>-guide-key``, ``gradium-guide-key``)."""
    keys = {vendor: f"{vendor}-guide-key", "gradium": "gradium-guide-key"}
    with serve_fronts_for_guide(folder, sample, keys) as urls:
        yield MigrationGuide(blocks, folder, sample, urls[vendor], urls["gradium"] + "/api", check_output)
