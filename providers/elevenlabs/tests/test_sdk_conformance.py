"""ElevenLabs' own Python SDK (elevenlabs 2.78.0) as a client of the ElevenLabs front.

If the vendor's client works against the front, the front is faithful, and the backend passing against it means
something. Covered: batch STT, realtime STT, REST TTS (convert, stream, with timestamps, stream with timestamps) and
the single-context TTS socket (``convert_realtime``). ``convert_realtime`` always dials ``wss://`` (clients.md 7.1):
the test points its private WebSocket base back at the plain ``ws://`` front.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from speechbridge.audio import AudioFormat, decode, encode
from speechbridge.testing import SpeechSample

elevenlabs = pytest.importorskip("elevenlabs")
from elevenlabs.core.api_error import ApiError  # noqa: E402

TEXT = "Hello there. The quick brown fox"
SDK_DEPRECATION = "ignore:ConnectionClosed.* is deprecated:DeprecationWarning"  # the SDK's own use of websockets


def _client(front: Any, key: str | None = None) -> Any:
    return elevenlabs.ElevenLabs(api_key=key or front.key, base_url=front.url)


def test_sdk_transcribes_a_file(scripted_front: Any, speech_sample: SpeechSample) -> None:
    wav = encode(speech_sample.audio, "wav")
    result = _client(scripted_front).speech_to_text.convert(
        file=("a.wav", wav, "audio/wav"), model_id="scribe_v1", language_code="en", timestamps_granularity="word",
        diarize=False,
    )  # fmt: skip
    assert result.text == speech_sample.text
    assert [word.text for word in result.words if word.type == "word"] == list(speech_sample.words)
    raw = _client(scripted_front).speech_to_text.convert(
        file=("a.pcm", speech_sample.audio.data, "application/octet-stream"), model_id="scribe_v2",
        file_format="pcm_s16le_16",
    )  # fmt: skip
    assert raw.text == speech_sample.text


def test_sdk_sees_a_wrong_key_as_an_api_error(scripted_front: Any, speech_sample: SpeechSample) -> None:
    with pytest.raises(ApiError) as info:
        _client(scripted_front, "wrong").speech_to_text.convert(
            file=("a.wav", encode(speech_sample.audio, "wav"), "audio/wav"), model_id="scribe_v1"
        )
    assert info.value.status_code == 401
    assert info.value.body["detail"]["status"] == "invalid_api_key"


async def test_sdk_streams_audio_and_commits(scripted_front: Any, speech_sample: SpeechSample) -> None:
    from elevenlabs.realtime.scribe import AudioFormat as ScribeFormat
    from elevenlabs.realtime.scribe import CommitStrategy

    client = elevenlabs.AsyncElevenLabs(api_key=scripted_front.key, base_url=scripted_front.url)
    connection = await client.speech_to_text.realtime.connect(
        {"model_id": "scribe_v2_realtime", "audio_format": ScribeFormat.PCM_16000, "sample_rate": 16000,
         "commit_strategy": CommitStrategy.MANUAL, "language_code": "en", "include_timestamps": True}
    )  # fmt: skip
    committed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    partials: list[str] = []
    connection.on("committed_transcript_with_timestamps", committed.put_nowait)
    connection.on("partial_transcript", lambda data: partials.append(data["text"]))
    data = speech_sample.audio.data
    for start in range(0, len(data), 3200):
        await connection.send({"audio_base_64": base64.b64encode(data[start : start + 3200]).decode()})
    await connection.commit()
    message = await asyncio.wait_for(committed.get(), 10)
    await connection.close()
    assert message["text"] == speech_sample.text
    assert [word["text"] for word in message["words"]] == list(speech_sample.words)
    assert partials and partials[-1] == speech_sample.text


def test_sdk_converts_and_streams_text(scripted_front: Any) -> None:
    client = _client(scripted_front)
    audio = b"".join(client.text_to_speech.convert("sine", text=TEXT, model_id="eleven_flash_v2_5",
                                                   output_format="pcm_16000"))  # fmt: skip
    streamed = b"".join(client.text_to_speech.stream("sine", text=TEXT, output_format="ulaw_8000"))
    assert decode(audio, AudioFormat.pcm16(16000)).duration_s == pytest.approx(
        decode(streamed, AudioFormat("mulaw", 8000)).duration_s, abs=0.01
    )
    mp3 = b"".join(client.text_to_speech.convert("21m00Tcm4TlvDq8ikWAM", text=TEXT))  # the SDK's default: mp3_44100_128
    assert decode(mp3).duration_s == pytest.approx(len(audio) / 32000, abs=0.1)


def test_sdk_reads_timestamps(scripted_front: Any) -> None:
    client = _client(scripted_front)
    whole = client.text_to_speech.convert_with_timestamps("sine", text=TEXT, output_format="pcm_16000")
    assert "".join(whole.alignment.characters) == TEXT
    assert whole.alignment.character_end_times_seconds[-1] == pytest.approx(
        len(base64.b64decode(whole.audio_base_64)) / 32000, abs=0.01
    )
    lines = list(client.text_to_speech.stream_with_timestamps("sine", text=TEXT, output_format="pcm_16000"))
    assert lines and "".join(lines[0].alignment.characters) == TEXT
    assert b"".join(base64.b64decode(line.audio_base_64) for line in lines) == base64.b64decode(whole.audio_base_64)


def test_sdk_sees_an_unknown_voice_as_404(scripted_front: Any) -> None:
    with pytest.raises(ApiError) as info:
        b"".join(_client(scripted_front).text_to_speech.convert("no-such-voice", text=TEXT))
    assert info.value.status_code == 404


def test_sdk_lists_voices_and_mints_tokens(scripted_front: Any) -> None:
    client = _client(scripted_front)
    voices = client.voices.get_all()
    assert {"sine", "square", "21m00Tcm4TlvDq8ikWAM"} <= {voice.voice_id for voice in voices.voices}
    token = client.tokens.single_use.create("realtime_scribe")
    assert token.token


@pytest.mark.filterwarnings(SDK_DEPRECATION)
def test_sdk_speaks_over_the_single_context_socket(scripted_front: Any) -> None:
    client = _client(scripted_front)
    client.text_to_speech._ws_base_url = scripted_front.url.replace("http://", "ws://")
    pieces = iter(["Hello there. ", "The quick ", "brown fox"])
    audio = b"".join(
        client.text_to_speech.convert_realtime(
            voice_id="sine", text=pieces, model_id="eleven_flash_v2_5", output_format="pcm_16000"
        )
    )
    whole = b"".join(client.text_to_speech.convert("sine", text=TEXT, output_format="pcm_16000"))
    assert len(audio) == pytest.approx(len(whole), abs=64)


@pytest.mark.filterwarnings(SDK_DEPRECATION)
def test_sdk_sees_a_refused_socket_as_an_api_error(scripted_front: Any) -> None:
    client = _client(scripted_front, "wrong")
    client.text_to_speech._ws_base_url = scripted_front.url.replace("http://", "ws://")
    with pytest.raises(ApiError) as info:
        b"".join(client.text_to_speech.convert_realtime(voice_id="sine", text=iter(["Hello. "])))
    assert info.value.status_code == 1008
