"""The blocking facade for scripts: :func:`transcribe_file` and :func:`speak`.

Each call loads the configuration (unless given one), makes the provider, runs it to completion and closes it.
Inside a running event loop, use the async API instead (``await config.stt().transcribe(...)``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Final

from .audio import RAW_ENCODINGS, AudioFormat
from .config import Config, load_config
from .errors import AudioFormatError, ConfigError, SpeechBridgeError
from .events import Transcript
from .stt import STTProvider
from .tts import Synthesis, TTSProvider

__all__ = ["input_format", "output_format", "speak", "transcribe_file"]

ConfigSource = Config | str | os.PathLike[str] | None

CONTAINER_EXTENSIONS: Final = {".wav": "wav", ".flac": "flac", ".ogg": "ogg_opus", ".opus": "ogg_opus", ".mp3": "mp3"}
RAW_EXTENSIONS: Final = {".ulaw": "mulaw", ".mulaw": "mulaw", ".alaw": "alaw", ".pcm": None, ".raw": None}
RAW_EXAMPLE: Final = {"mulaw": "mulaw_8000", "alaw": "alaw_8000", None: "pcm_16000"}


def input_format(path: str | os.PathLike[str], format: AudioFormat | str | None = None) -> AudioFormat | None:
    """The format to read ``path`` as: ``format`` when given; None for a container (recognised from its bytes).

    Raw files (``.pcm``, ``.raw``, ``.ulaw``, ``.mulaw``, ``.alaw``) have no header, so they need ``format``.
    """
    if format is not None:
        return _matching(path, AudioFormat.parse(format))
    suffix = Path(path).suffix.lower()
    if suffix in RAW_EXTENSIONS:
        example = RAW_EXAMPLE[RAW_EXTENSIONS[suffix]]
        raise AudioFormatError(
            f"{os.fspath(path)} holds raw audio with no header: give its format and sample rate, e.g. {example}"
        )
    return None


def output_format(path: str | os.PathLike[str], format: AudioFormat | str | None = None) -> AudioFormat:
    """The format to write ``path`` in: ``format`` when given, else the one its extension names."""
    if format is not None:
        return _matching(path, AudioFormat.parse(format))
    suffix = Path(path).suffix.lower()
    if suffix in CONTAINER_EXTENSIONS:
        return AudioFormat(CONTAINER_EXTENSIONS[suffix])  # type: ignore[arg-type]
    if suffix in RAW_EXTENSIONS:
        example = RAW_EXAMPLE[RAW_EXTENSIONS[suffix]]
        raise AudioFormatError(f"{os.fspath(path)} is raw audio: give its format with a sample rate, e.g. {example}")
    accepted = ", ".join([*CONTAINER_EXTENSIONS, *RAW_EXTENSIONS])
    raise AudioFormatError(
        f"cannot tell the audio format of {os.fspath(path)!r} from its extension; give a format "
        f"(extensions known: {accepted})"
    )


def _matching(path: str | os.PathLike[str], fmt: AudioFormat) -> AudioFormat:
    """``fmt``, unless the file's extension names another encoding."""
    suffix = Path(path).suffix.lower()
    implied = CONTAINER_EXTENSIONS.get(suffix) or RAW_EXTENSIONS.get(suffix)
    raw_any = suffix in RAW_EXTENSIONS and implied is None
    if (implied and fmt.encoding != implied) or (raw_any and fmt.encoding not in RAW_ENCODINGS):
        raise AudioFormatError(f"format {fmt} does not match the extension of {os.fspath(path)!r}")
    return fmt


def transcribe_file(
    path: str | os.PathLike[str],
    *,
    provider: str | None = None,
    profile: str | None = None,
    config: ConfigSource = None,
    format: AudioFormat | str | None = None,
    **options: Any,
) -> Transcript:
    """Transcribe an audio file with the configured STT provider (``provider``, ``profile`` and ``options`` override).

    Containers (WAV, FLAC, Ogg/Opus, MP3) are recognised; raw files need ``format``, e.g. ``"mulaw_8000"``.
    """
    _refuse_running_loop("transcribe_file")
    fmt = input_format(path, format)
    stt = _config(config).stt(profile=profile, provider=provider, **options)
    return asyncio.run(_transcribe(stt, path, fmt))


def speak(
    text: str,
    path: str | os.PathLike[str] | None = None,
    *,
    provider: str | None = None,
    profile: str | None = None,
    config: ConfigSource = None,
    voice: str | None = None,
    format: AudioFormat | str | None = None,
    **options: Any,
) -> Synthesis:
    """Synthesise ``text`` with the configured TTS provider, and write it to ``path`` when given.

    The format comes from ``format``, else from the extension of ``path`` (.wav .flac .ogg .opus .mp3), else the
    provider's default.
    """
    _refuse_running_loop("speak")
    fmt = output_format(path, format) if path is not None else format
    if path is not None and not Path(path).parent.is_dir():
        raise ConfigError(f"cannot write {os.fspath(path)!r}: its directory does not exist")
    tts = _config(config).tts(profile=profile, provider=provider, **options)
    synthesis = asyncio.run(_synthesize(tts, text, voice, fmt))
    if path is not None:
        try:
            Path(path).write_bytes(synthesis.audio)
        except OSError as exc:
            raise SpeechBridgeError(f"cannot write {os.fspath(path)!r}: {exc.strerror}") from None
    return synthesis


async def _transcribe(stt: STTProvider[Any], path: str | os.PathLike[str], fmt: AudioFormat | None) -> Transcript:
    async with stt:
        return await stt.transcribe(path, format=fmt)


async def _synthesize(tts: TTSProvider[Any], text: str, voice: str | None, fmt: AudioFormat | str | None) -> Synthesis:
    async with tts:
        return await tts.synthesize(text, voice=voice, format=fmt)


def _config(config: ConfigSource) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def _refuse_running_loop(function: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"speechbridge.{function}() blocks, so it cannot run inside a running event loop; "
        "use the async API instead (await config.stt().transcribe(...) / await config.tts().synthesize(...))"
    )
