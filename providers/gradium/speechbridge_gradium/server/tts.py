"""A Gradium TTS request served by any :class:`~speechbridge.tts.TTSProvider`.

Text messages are joined with one space, as Gradium joins them, and streamed to the backend. The inline tag
``<flush>`` makes the backend speak what it has at once; ``<break time="1.5s"/>`` (0.1 to 2 s) adds that much
silence. Audio goes out in 80 ms frames of ``output_format`` (``pcm`` and ``wav``: 48 kHz, 3840 samples a frame;
``wav`` has a streaming header in its first frame), each with its ``start_s``/``stop_s``; ``opus`` is encoded when
the text ends, since an Ogg stream cannot be cut into independent frames. Word timings from the backend become
``text`` messages with ``start_s`` and ``stop_s``. ``end_of_stream`` speaks the rest and ends the request.

``json_config`` is validated as Gradium does; ``padding_bonus`` becomes the backend's ``speed`` when it has one
(``speed = 1 - padding_bonus / 8``, so -4..4 maps to 1.5..0.5), the other keys (and ``pronunciation_id``) have no
effect on a backend that has no equivalent. The backend's audio is converted here rather than by the backend stream,
so a ``<flush>`` also flushes the resampler and the flushed text's audio goes out whole.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any, Final

from speechbridge.audio import AudioFormat, PCMAudio, StreamConverter, alaw_encode, encode, ulaw_encode, wav_header
from speechbridge.errors import ConfigError
from speechbridge.events import AudioChunk, Flushed, StreamEnded, WordTiming
from speechbridge.settings import settings_fields
from speechbridge.tts import TTSProvider, TTSStream

from ..protocol import (
    FRAME_S,
    TTS_OUTPUT_FORMATS,
    AudioIn,
    ClientMessage,
    EndOfStreamIn,
    FlushIn,
    Setup,
    TextIn,
    server_audio,
    server_end_of_stream,
    server_text,
    server_tts_ready,
)
from ..settings import GradiumTTSSettings
from .failures import POLICY, RequestError
from .requests import Channel, Request
from .voices import VoiceCatalog

__all__ = ["AudioFramer", "Break", "TTSRequest", "TagReader", "read_tts_config"]

TTS_CONFIG_KEYS: Final = ("temp", "cfg_coef", "padding_bonus", "rewrite_rules")
BREAK_RANGE_S: Final = (0.1, 2.0)
OPUS_PIECE_BYTES: Final = 16384
_TAG: Final = re.compile(r'<flush\s*/?>|<break\s+time\s*=\s*"(?P<time>[^"]*)"\s*/?>', re.IGNORECASE)
_TIME: Final = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s)?\s*$", re.IGNORECASE)
_LONGEST_TAG: Final = 64


def read_tts_config(json_config: dict[str, Any]) -> GradiumTTSSettings:
    """The voice settings of a setup: known keys validated, unknown keys ignored."""
    values = {key: json_config[key] for key in TTS_CONFIG_KEYS if key in json_config}
    try:
        return GradiumTTSSettings(**values)
    except ConfigError as error:
        raise RequestError(POLICY, f"invalid json_config: {error.message}") from None


class Break(float):
    """A ``<break>``: seconds of silence."""


class Flush:
    """A ``<flush>`` tag."""


def _break_seconds(spec: str) -> Break:
    match = _TIME.match(spec)
    if match is None:
        raise RequestError(POLICY, f'<break time="{spec}"/> is not a duration such as "1.5s" or "500ms"')
    seconds = float(match["value"]) / (1000 if (match["unit"] or "s").lower() == "ms" else 1)
    low, high = BREAK_RANGE_S
    if not low <= seconds <= high:
        raise RequestError(POLICY, f'<break time="{spec}"/> is out of range (accepted: {low} s to {high} s)')
    return Break(seconds)


class TagReader:
    """Splits streamed text into plain text, :class:`Flush` and :class:`Break`; a tag may span messages."""

    def __init__(self) -> None:
        self._pending = ""

    def push(self, text: str) -> list[str | Flush | Break]:
        self._pending += text
        parts: list[str | Flush | Break] = []
        while match := _TAG.search(self._pending):
            if match.start():
                parts.append(self._pending[: match.start()])
            parts.append(_break_seconds(match["time"]) if match["time"] is not None else Flush())
            self._pending = self._pending[match.end() :]
        cut = self._pending.rfind("<")
        if cut == -1 or ">" in self._pending[cut:] or len(self._pending) - cut > _LONGEST_TAG:
            cut = len(self._pending)
        if cut:
            parts.append(self._pending[:cut])
        self._pending = self._pending[cut:]
        return parts

    def finish(self) -> str:
        rest, self._pending = self._pending, ""
        return rest


class AudioFramer:
    """The backend's audio in, Gradium ``audio`` payloads of 80 ms (with their times) out."""

    def __init__(self, output_format: str) -> None:
        self.output = TTS_OUTPUT_FORMATS[output_format]
        self.rate = self.output.sample_rate or 48000
        self.raw_format = self.output if self.output.is_raw else AudioFormat.pcm16(self.rate)
        self.frame_bytes = round(self.rate * FRAME_S) * self.raw_format.frame_width
        self.source = self.raw_format
        self._converter = StreamConverter(self.source, self.raw_format)
        self._header = wav_header(self.rate) if self.output.encoding == "wav" else b""
        self._opus = self.output.encoding == "ogg_opus"
        self._buffer = bytearray()
        self._bytes_out = 0

    def take_from(self, source: AudioFormat) -> None:
        """The backend makes ``source`` (raw): convert it here, so a flush can also flush the resampler."""
        self.source = source
        self._converter = StreamConverter(source, self.raw_format)

    def push(self, data: bytes) -> list[tuple[bytes, float, float]]:
        """Audio from the backend in; the whole frames it completes out."""
        return self._push(self._converter.process(data))

    def flush(self) -> list[tuple[bytes, float, float]]:
        """A flush point: everything converted so far, in whole frames (the converter starts afresh)."""
        tail = self._converter.flush()
        self._converter = StreamConverter(self.source, self.raw_format)
        return self._push(tail)

    def _push(self, data: bytes) -> list[tuple[bytes, float, float]]:
        self._buffer += data
        if self._opus:
            return []
        size = self.frame_bytes
        whole = len(self._buffer) - len(self._buffer) % size
        frames = [bytes(self._buffer[start : start + size]) for start in range(0, whole, size)]
        del self._buffer[:whole]
        return [self._frame(frame) for frame in frames]

    def silence(self, seconds: float) -> list[tuple[bytes, float, float]]:
        pcm = bytes(2 * round(seconds * self.rate))
        encoding = self.raw_format.encoding
        return self._push(ulaw_encode(pcm) if encoding == "mulaw" else alaw_encode(pcm) if encoding == "alaw" else pcm)

    def finish(self) -> list[tuple[bytes, float, float]]:
        self._buffer += self._converter.flush()
        rest, self._buffer = bytes(self._buffer), bytearray()
        if self._opus:
            return self._opus_pieces(rest) if rest else []
        return [self._frame(rest)] if rest or self._header else []

    def _frame(self, payload: bytes) -> tuple[bytes, float, float]:
        start = self._bytes_out / self.raw_format.frame_width / self.rate
        self._bytes_out += len(payload)
        stop = self._bytes_out / self.raw_format.frame_width / self.rate
        payload, self._header = self._header + payload, b""
        return payload, round(start, 6), round(stop, 6)

    def _opus_pieces(self, pcm: bytes) -> list[tuple[bytes, float, float]]:
        duration = len(pcm) / 2 / self.rate
        data = encode(PCMAudio(pcm, self.rate), self.output)
        return [
            (data[offset : offset + OPUS_PIECE_BYTES], round(duration * offset / len(data), 6),
             round(duration * min(len(data), offset + OPUS_PIECE_BYTES) / len(data), 6))
            for offset in range(0, len(data), OPUS_PIECE_BYTES)
        ]  # fmt: skip


class TTSRequest(Request):
    """Synthesis for one setup."""

    def __init__(self, channel: Channel, setup: Setup, backend: TTSProvider[Any], voices: VoiceCatalog) -> None:
        super().__init__(channel, setup)
        self.backend = backend
        self.voices = voices
        self.stream: TTSStream | None = None
        self.framer: AudioFramer
        self.tags = TagReader()
        self._texts = 0
        self._offset_s = 0.0  # silence added by breaks, ahead of the backend's clock
        self._after_flush: deque[Break | None] = deque()

    async def _open(self) -> None:
        output_format = self.setup.output_format or "wav"
        if output_format not in TTS_OUTPUT_FORMATS:
            raise RequestError(
                POLICY, f"unsupported output_format {output_format!r} (accepted: {', '.join(TTS_OUTPUT_FORMATS)})"
            )
        config = read_tts_config(dict(self.setup.json_config))
        backend_voice = await self.voices.resolve(self.setup.voice_id, self.setup.voice)
        self.framer = AudioFramer(output_format)
        options: dict[str, Any] = {}
        if backend_voice is not None:
            options["voice"] = backend_voice
        if config.padding_bonus is not None and "speed" in settings_fields(self.backend.Settings):
            options["speed"] = round(min(1.5, max(0.5, 1 - config.padding_bonus / 8)), 4)
        try:
            stream = self.backend.stream(format=self.framer.raw_format, **options)
            native = stream.native_format
            if native != self.framer.raw_format and native.is_raw and native.channels == 1:
                stream = self.backend.stream(format=native, **options)  # the first one was never opened
                self.framer.take_from(native)
        except ConfigError as error:
            raise RequestError(POLICY, f"the backend cannot take this setup: {error.message}") from None
        self.stream = stream
        await stream.open()
        self.spawn(self._consume, stream)
        await self.emit(server_tts_ready(self.request_id, self.setup.model_name, self.framer.rate))

    async def _handle(self, message: ClientMessage) -> None:
        assert self.stream is not None
        if isinstance(message, TextIn):
            text = message.text if not self._texts else " " + message.text
            self._texts += 1
            for part in self.tags.push(text):
                await self._speak(part)
        elif isinstance(message, EndOfStreamIn):
            await self._speak(self.tags.finish())
            await self.stream.end()
        elif isinstance(message, AudioIn):
            raise RequestError(POLICY, "'audio' messages belong to STT requests; a TTS request takes 'text'")
        elif isinstance(message, FlushIn):
            raise RequestError(POLICY, "TTS has no 'flush' message: put the <flush> tag in the text")

    async def _speak(self, part: str | Flush | Break) -> None:
        assert self.stream is not None
        if isinstance(part, str):
            await self.stream.send_text(part)
        else:
            self._after_flush.append(part if isinstance(part, Break) else None)
            await self.stream.flush()

    async def _consume(self, stream: TTSStream) -> None:
        async for event in stream:
            if isinstance(event, AudioChunk):
                await self._send_audio(self.framer.push(event.data))
            elif isinstance(event, WordTiming):
                start, stop = event.start_s + self._offset_s, event.end_s + self._offset_s
                await self.emit(server_text(event.text, round(start, 3), round(stop, 3)))
            elif isinstance(event, Flushed) and self._after_flush:
                pause = self._after_flush.popleft()
                await self._send_audio(self.framer.flush())
                if pause is not None:
                    await self._send_audio(self.framer.silence(pause))
                    self._offset_s += pause
            elif isinstance(event, StreamEnded):
                await self._send_audio(self.framer.finish())
                await self.emit(server_end_of_stream())
                await self.done()
                return

    async def _send_audio(self, frames: list[tuple[bytes, float, float]]) -> None:
        for payload, start, stop in frames:
            await self.emit(server_audio(payload, start, stop))

    async def _release(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
