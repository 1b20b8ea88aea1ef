"""speechbridge.testing.guides: the blocks of a markdown page run in order, and a block that does not run fails."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from speechbridge.errors import ConfigError
from speechbridge.migrate import Migration, Unmapped
from speechbridge.plugins import ProviderRegistry
from speechbridge.testing.guides import Block, BlockFailed, GuideRunner, blocks_of, read_blocks

PAGE = """# A guide

```python
print("before any section")
```

## Setup

```json options.json
{"model": "nova-3"}
```

````
not a fence of ours
````

## Run it

```sh
speechbridge providers > providers.txt
```
"""


@pytest.fixture(autouse=True)
def _migrations(installed: ProviderRegistry) -> None:
    installed.add_migration("acme", _migrate_acme)


def _migrate_acme(options: Mapping[str, object]) -> Migration:
    unmapped = tuple(Unmapped(key, value, "acme-only") for key, value in options.items() if key != "lang")
    config = {"stt": {"provider": "code", "language": options.get("lang", "en")}, "tts": {"provider": "code"}}
    return Migration("acme", config, {}, unmapped)


def block(lang: str, code: str, file: str | None = None) -> Block:
    return Block(lang, file, code, 7, "Section", "guide.md")


def test_blocks_have_their_language_file_line_and_section():
    blocks = blocks_of(PAGE, "guide.md")
    assert [(each.lang, each.file, each.line, each.section) for each in blocks] == [
        ("python", None, 4, ""),
        ("json", "options.json", 10, "Setup"),
        ("", None, 14, "Setup"),
        ("sh", None, 20, "Run it"),
    ]
    assert blocks[1].code == '{"model": "nova-3"}\n'
    assert blocks[3].where == "guide.md:20 (Run it)"


def test_a_block_never_closed_is_refused(tmp_path: Path):
    (tmp_path / "broken.md").write_text("text\n```python\nprint(1)\n")
    with pytest.raises(BlockFailed, match=r"broken\.md: the block opened at line 2 is never closed"):
        read_blocks(tmp_path / "broken.md")


def test_speechbridge_blocks_import_nothing_but_speechbridge_and_the_standard_library():
    assert block("python", "import asyncio, os\nfrom speechbridge import speak\n").is_speechbridge
    assert block("python", "import speechbridge.testing\n").is_speechbridge
    assert not block("python", "from deepgram import DeepgramClient\nfrom speechbridge import speak\n").is_speechbridge
    assert not block("python", "import os\nprint(os.sep)\n").is_speechbridge
    assert not block("text", "from speechbridge import speak\n").is_speechbridge


def test_every_kind_of_block_runs_in_the_folder(tmp_path: Path):
    judged: list[tuple[int, str]] = []
    runner = GuideRunner(tmp_path, lambda each, printed: judged.append((each.line, printed)))
    runner.run_all(blocks_of(PAGE.replace("````\nnot a fence of ours\n````\n", ""), "guide.md"))
    assert judged == [(4, "before any section\n")]
    assert (tmp_path / "options.json").read_text() == '{"model": "nova-3"}\n'
    assert "code" in (tmp_path / "providers.txt").read_text()
    runner.run(block("text", "\n"))
    runner.run(block("python", 'open("out.txt", "w").write("x")\nprint("wrote out.txt")\n'))
    assert (tmp_path / "out.txt").read_text() == "x"


@pytest.mark.parametrize(
    ("lang", "code", "file", "problem"),
    [
        ("bash", "ls\n", None, "no runner for 'bash' blocks"),
        ("python", "x = 1\n", None, "printed nothing"),
        ("python", 'open("empty.txt", "w")\nprint("done")\n', None, "wrote an empty empty.txt"),
        ("json", "{model: 1}\n", "options.json", "not valid JSON"),
        ("toml", "[stt\n", None, "not valid TOML"),
        ("toml", '[stt]\nprovider = "nowhere"\n', "speechbridge.toml", "the config does not make its providers"),
        ("sh", "ls -l\n", None, "only speechbridge commands run here"),
        (
            "sh",
            "speechbridge transcribe missing.wav\n",
            None,
            "speechbridge transcribe missing.wav exited with 2: .*missing.wav",
        ),
        ("text", "hello\n", None, "a text block follows the command"),
    ],
)
def test_a_block_that_does_not_run_fails_naming_where(
    tmp_path: Path, lang: str, code: str, file: str | None, problem: str
):
    with pytest.raises(BlockFailed, match=rf"^guide\.md:7 \(Section\): {problem}"):
        GuideRunner(tmp_path).run(block(lang, code, file))


def test_text_is_the_stderr_of_the_command_before_and_a_toml_block_what_it_wrote(tmp_path: Path):
    runner = GuideRunner(tmp_path)
    runner.run(block("json", '{"lang": "fr", "diarize": true}\n', "options.json"))
    migrate = block("sh", "speechbridge migrate acme options.json > speechbridge.toml\n")
    runner.run(migrate)
    runner.run(block("text", "not migrated: diarize = true: acme-only\n"))
    migrated = '[stt]\nprovider = "code"\nlanguage = "fr"\n\n[tts]\nprovider = "code"\n'
    runner.run(block("toml", migrated, "speechbridge.toml"))
    runner.run(migrate)
    with pytest.raises(BlockFailed, match="the command printed not migrated: diarize"):
        runner.run(block("text", "something else\n"))
    with pytest.raises(BlockFailed, match="the command wrote other tables"):
        runner.run(block("toml", '[stt]\nprovider = "code"\n', "speechbridge.toml"))
    runner.run(block("sh", "speechbridge providers > speechbridge.toml\n"))
    with pytest.raises(BlockFailed, match=r"the command wrote no TOML to speechbridge\.toml"):
        runner.run(block("toml", '[stt]\nprovider = "code"\n', "speechbridge.toml"))


def test_an_exception_of_a_python_block_propagates(tmp_path: Path):
    code = "from speechbridge.errors import ConfigError\nraise ConfigError('bad option')\n"
    with pytest.raises(ConfigError, match="bad option"):
        GuideRunner(tmp_path).run(block("python", code))
