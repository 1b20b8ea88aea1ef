"""The sans-IO parts of the Gradium front: voice activity, input decoding, word release and text tags."""

from __future__ import annotations

import math
import struct

import pytest
from speechbridge_gradium.server.audio_in import InputDecoder
from speechbridge_gradium.server.failures import RequestError
from speechbridge_gradium.server.stt import WordRelease
from speechbridge_gradium.server.tts import AudioFramer, Break, Flush, TagReader
from speechbridge_gradium.server.vad import InactivityModel

from speechbridge.audio import AudioFormat, encode, wav_header
from speechbridge.events import Transcript, VADUpdate, Word
from speechbridge.testing import SpeechSample


def test_inactivity_rises_with_silence_and_falls_with_horizon() -> None:
    model = InactivityModel()
    model.observe(VADUpdate(0.08, 0.9))
    assert model.inactivity() == (0.0, 0.0, 0.0, 0.0)
    for step in range(2, 9):
        model.observe(VADUpdate(step * 0.08, 0.02))
    silence = 7 * 0.08
    assert model.silence_s == pytest.approx(silence)
    probs = model.inactivity()
    assert list(probs) == sorted(probs, reverse=True)
    assert probs[2] == pytest.approx(0.98 * (1 - 2.718281828 ** (-silence / 0.5)), abs=1e-3)
    assert len(model.steps_until(silence + 0.08)) == 8
    assert model.steps_until(0.64, partial=True) == [] and len(model.steps_until(0.7, partial=True)) == 1


def test_a_backends_own_prediction_is_interpolated() -> None:
    model = InactivityModel()
    model.observe(VADUpdate(0.08, 0.1, ((0.5, 0.2), (1.0, 0.4), (2.0, 0.8))))
    assert model.inactivity() == (0.2, 0.4, 0.8, 0.8)
    model.observe(VADUpdate(0.16, 0.1, ((1.0, 0.5), (3.0, 0.9))))
    assert model.inactivity() == (0.5, 0.5, 0.7, 0.9)


def test_measured_vad_counts_silence_between_levels(speech_sample: SpeechSample) -> None:
    model = InactivityModel()
    model.observe_pcm(speech_sample.audio.data[: 2 * 16000 * 2], 16000)  # 0.3 s silence, then tones
    assert model.time_s == pytest.approx(2.0)
    assert model.speech_prob > 0.9 and model.silence_s < 0.2
    model.observe_pcm(bytes(2 * 16000), 16000)
    assert model.speech_prob < 0.01 and model.silence_s == pytest.approx(1.0 + model.silence_s - 1.0)
    assert model.inactivity()[0] > 0.99


async def test_a_turn_completion_model_scores_each_silence_once() -> None:
    heard: list[tuple[int, int]] = []

    def completion(pcm16: bytes, sample_rate: int) -> float:
        heard.append((len(pcm16), sample_rate))
        return 0.9 if len(heard) == 1 else 0.6

    model = InactivityModel(completion)

    async def step(speech_prob: float) -> None:
        model.hear(bytes(round(0.08 * 8000) * 2), 8000)
        model.observe(VADUpdate(model.time_s + 0.08, speech_prob))
        await model.judge()

    model.hear(bytes(9 * 8000 * 2), 8000)  # more than the model's 8 s window
    await step(0.95)
    assert heard == [] and model.inactivity() == (0.0, 0.0, 0.0, 0.0)
    await step(0.0)
    assert heard == [(8 * 8000 * 2, 8000)]
    silence = [1 - math.exp(-0.08 / (0.25 * horizon)) for horizon in (0.5, 1.0, 2.0, 3.0)]
    assert model.inactivity() == pytest.approx([0.9 + 0.1 * p for p in silence], abs=1e-4)
    await step(0.0)
    assert len(heard) == 1 and model.completion_prob == 0.9  # the same silence is not scored again
    await step(0.9)
    assert model.completion_prob == 0.0
    await step(0.1)
    assert len(heard) == 2 and model.completion_prob == 0.6


async def test_without_speech_there_is_no_turn_to_score() -> None:
    model = InactivityModel(lambda pcm16, sample_rate: pytest.fail("scored a silence that followed no speech"))
    model.hear(bytes(3200), 16000)
    model.observe(VADUpdate(0.08, 0.0))
    await model.judge()
    assert model.completion_prob == 0.0


def _feed(decoder: InputDecoder, data: bytes, size: int) -> bytes:
    return b"".join(decoder.push(data[start : start + size]) for start in range(0, len(data), size)) + decoder.finish()


@pytest.mark.parametrize("size", [1, 7, 45, 4096])
def test_wav_header_is_read_across_chunks(speech_sample: SpeechSample, size: int) -> None:
    pcm = speech_sample.audio.data[:8000]
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde\0"  # a chunk before the data, odd-sized and padded
    header = wav_header(16000, len(pcm))
    data = header[:36] + extra + header[36:] + pcm + b"trailing chunk"
    data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    decoder = InputDecoder("wav")
    assert _feed(decoder, data, size) == pcm
    assert decoder.sample_rate == 16000


def test_streaming_wav_of_unknown_length_and_stereo() -> None:
    stereo = struct.pack("<4h", 100, 300, -100, -300) * 10
    header = bytearray(wav_header(8000, None, channels=2))
    decoder = InputDecoder("wav")
    assert _feed(decoder, bytes(header) + stereo, 5) == struct.pack("<2h", 200, -200) * 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF\0\0\0\0WAVEdata\0\0\0\0", "no 'fmt ' chunk"),
        (b"OggS" + bytes(20), "RIFF/WAVE"),
        (b"RIFF\0\0\0\0WA", "inside its header"),
    ],
)
def test_malformed_wav(data: bytes, message: str) -> None:
    decoder = InputDecoder("wav")
    with pytest.raises(RequestError, match=message) as info:
        decoder.push(data)
        decoder.finish()
    assert info.value.code == 1008


def test_raw_input_is_converted_and_a_cut_sample_is_an_error(speech_sample: SpeechSample) -> None:
    ulaw = encode(speech_sample.audio, AudioFormat("mulaw", 8000))
    decoder = InputDecoder("ulaw_8000")
    assert len(_feed(decoder, ulaw, 333)) == 2 * len(ulaw)
    pcm = InputDecoder("pcm_16000")
    pcm.push(b"\0\0\0")
    with pytest.raises(RequestError, match="stray"):
        pcm.finish()
    with pytest.raises(RequestError, match="unsupported input_format 'pcm_11025'"):
        InputDecoder("pcm_11025")


def test_words_are_released_after_the_delay_or_when_final() -> None:
    release = WordRelease(0.8)
    hello, world = Word("hello", 0.0, 0.4), Word("world", 0.5, 0.9)
    assert release.transcript(Transcript("hello", False, 0.0, 0.4, (hello,)), 0.9) == []
    assert release.ripe(1.2) == [hello]
    assert release.transcript(Transcript("hello world", False, 0.0, 0.9, (hello, world)), 1.3) == []
    assert release.transcript(Transcript("hello world", True, 0.0, 0.9, (hello, world)), 1.3) == [world]
    assert release.rest() == []
    spread = release.transcript(Transcript("no times here", True, 1.0, 1.6), 2.0)
    assert [w.text for w in spread] == ["no", "times", "here"]
    assert [t for w in spread for t in (w.start_s, w.end_s)] == pytest.approx([1.0, 1.2, 1.2, 1.4, 1.4, 1.6])


def test_tags_are_found_across_messages() -> None:
    reader = TagReader()
    assert reader.push("Hello <fl") == ["Hello "]
    flush, there, pause = reader.push('ush> there <break time="1.5s"/>')
    assert isinstance(flush, Flush) and there == " there " and isinstance(pause, Break) and pause == 1.5
    reader = TagReader()
    parts = reader.push('a <flush> b <break time="250ms" /> c < d')
    assert [part if isinstance(part, str) else type(part) for part in parts] == ["a ", Flush, " b ", Break, " c "]
    assert reader.finish() == "< d"  # perhaps a tag: held until more text or the end
    assert parts[3] == pytest.approx(0.25)


def test_audio_framer_cuts_80ms_frames_with_times() -> None:
    framer = AudioFramer("pcm_16000")
    frames = framer.push(bytes(2560 * 2 + 100))
    assert [(len(payload), start, stop) for payload, start, stop in frames] == [(2560, 0.0, 0.08), (2560, 0.08, 0.16)]
    assert [(len(p), start, stop) for p, start, stop in framer.finish()] == [(100, 0.16, 0.163125)]
    wav = AudioFramer("wav")
    first = wav.push(bytes(7680))[0][0]
    assert first[:4] == b"RIFF" and len(first) == 44 + 7680
