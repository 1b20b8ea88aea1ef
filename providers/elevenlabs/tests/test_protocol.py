"""The sans-IO ElevenLabs protocol against the message examples of protocols/elevenlabs.md."""

from __future__ import annotations

import base64
import json

import pytest
from speechbridge_elevenlabs import protocol as p

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
)

# --- STT ------------------------------------------------------------------------------------------------------


def test_batch_words_keep_types_and_timings() -> None:
    body = {
        "language_code": "eng",
        "text": "Hello world.",
        "words": [
            {"text": "Hello", "start": 0.05, "end": 0.40, "type": "word", "speaker_id": "speaker_0", "logprob": -0.02},
            {"text": " ", "start": 0.40, "end": 0.45, "type": "spacing", "logprob": 0.0},
            {"text": "world.", "start": 0.45, "end": 0.90, "type": "word", "logprob": -0.05,
             "characters": [{"text": "w", "start": 0.45, "end": 0.5}]},
        ],
    }  # fmt: skip
    words = p.parse_batch_words(body)
    assert [(w.text, w.type) for w in words] == [("Hello", "word"), (" ", "spacing"), ("world.", "word")]
    assert words[2].start == 0.45 and words[2].end == 0.90 and words[2].logprob == -0.05


def test_batch_words_reject_malformed_entries() -> None:
    with pytest.raises(ProtocolError):
        p.parse_batch_words({"words": [{"start": 0.1}]})
    with pytest.raises(ProtocolError):
        p.parse_batch_words({"words": [{"text": "a", "start": "soon"}]})


def test_server_batch_response_puts_spacing_between_words() -> None:
    body = p.server_batch_response("a b", [("a", 0.0, 0.2), ("b", 0.3, 0.5)], language_code="eng",
                                   duration_s=1.0, request_id="r1")  # fmt: skip
    assert [w["type"] for w in body["words"]] == ["word", "spacing", "word"]
    assert body["words"][1]["start"] == 0.2 and body["words"][1]["end"] == 0.3
    assert [w.text for w in p.parse_batch_words(body) if w.type == "word"] == ["a", "b"]


def test_realtime_client_messages_match_what_the_sdk_sends() -> None:
    chunk = p.client_audio_chunk(b"\x00\x01", 16000)
    assert chunk == {"message_type": "input_audio_chunk", "audio_base_64": "AAE=", "commit": False,
                     "sample_rate": 16000, "previous_text": None}  # fmt: skip
    assert p.client_commit(16000) == {"message_type": "input_audio_chunk", "audio_base_64": "", "commit": True,
                                      "sample_rate": 16000}  # fmt: skip
    parsed = p.parse_stt_client_message(json.dumps(chunk))
    assert parsed.audio == b"\x00\x01" and not parsed.commit and parsed.sample_rate == 16000
    assert p.parse_stt_client_message(json.dumps(p.client_commit(16000))).commit


def test_realtime_client_message_errors() -> None:
    with pytest.raises(ProtocolError, match="unknown message_type"):
        p.parse_stt_client_message('{"message_type": "hello"}')
    with pytest.raises(ProtocolError, match="base64"):
        p.parse_stt_client_message('{"message_type": "input_audio_chunk", "audio_base_64": "***"}')
    with pytest.raises(ProtocolError, match="JSON"):
        p.parse_stt_client_message("not json")


def test_realtime_server_messages() -> None:
    started = p.parse_stt_server_message(json.dumps(p.server_session_started("s1", {"sample_rate": 16000})))
    assert started == p.SessionStarted("s1", {"sample_rate": 16000})
    assert p.parse_stt_server_message('{"message_type": "partial_transcript", "text": "hello wor"}') == (
        p.PartialTranscript("hello wor")
    )
    plain = p.parse_stt_server_message(json.dumps(p.server_committed("hello world")))
    assert plain == p.CommittedTranscript("hello world", False)
    timed = p.parse_stt_server_message(
        '{"message_type": "committed_transcript_with_timestamps", "text": "hello world", "language_code": "en",'
        ' "words": [{"text": "hello", "start": 0.1, "end": 0.4, "type": "word", "speaker_id": null, "logprob": -0.01}]}'
    )
    assert isinstance(timed, p.CommittedTranscript) and timed.timestamped and timed.language_code == "en"
    assert timed.words == (p.BatchWord("hello", 0.1, 0.4, "word", -0.01),)
    assert p.parse_stt_server_message('{"message_type": "warning", "warning": "x"}') == p.OtherSTTOut("warning")
    with pytest.raises(ProtocolError):
        p.parse_stt_server_message('{"text": "no type"}')


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("auth_error", AuthenticationError),
        ("quota_exceeded", QuotaExceeded),
        ("rate_limited", RateLimitError),
        ("commit_throttled", RateLimitError),
        ("input_error", InvalidRequest),
        ("chunk_size_exceeded", InvalidRequest),
        ("session_time_limit_exceeded", QuotaExceeded),
        ("transcriber_error", ProviderError),
    ],
)
def test_realtime_error_kinds_are_typed(kind: str, error_type: type[Exception]) -> None:
    message = p.parse_stt_server_message(json.dumps(p.server_stt_error(kind, "went wrong")))
    assert isinstance(message, p.STTErrorOut)
    error = message.to_error()
    assert type(error) is error_type and "went wrong" in str(error) and error.code == kind
    assert error.retryable == (kind in ("transcriber_error", "rate_limited", "commit_throttled"))


# --- TTS ------------------------------------------------------------------------------------------------------


def test_output_formats_hold_what_their_names_say() -> None:
    assert p.parse_output_format("pcm_22050") == AudioFormat.pcm16(22050)
    assert p.parse_output_format("mp3_44100_128") == AudioFormat("mp3", 44100)
    assert p.parse_output_format("ulaw_8000") == AudioFormat("mulaw", 8000)
    assert p.parse_output_format("opus_48000_64") == AudioFormat("ogg_opus", 48000)
    assert p.parse_output_format("wav_16000") == AudioFormat("wav", 16000)
    with pytest.raises(ConfigError, match="wav_16000") as info:
        p.parse_output_format("wav_16000", streaming=True)
    assert info.value.allowed and "pcm_44100" in info.value.allowed
    with pytest.raises(ConfigError):
        p.parse_output_format("pcm_11025")


def test_tts_client_messages_round_trip_through_the_server_reader() -> None:
    bos = p.client_bos("ctx-1", voice_settings={"stability": 0.5}, generation_config={"chunk_length_schedule": [50]})
    assert bos == {"text": " ", "voice_settings": {"stability": 0.5},
                   "generation_config": {"chunk_length_schedule": [50]}, "context_id": "ctx-1"}  # fmt: skip
    assert p.parse_tts_client_message(json.dumps(bos)) == p.TextIn(" ", "ctx-1", False, {"stability": 0.5})
    assert p.parse_tts_client_message(json.dumps(p.client_text("Hel", "c"))) == p.TextIn("Hel", "c")
    assert p.parse_tts_client_message(json.dumps(p.client_flush("c"))) == p.TextIn("", "c", True)
    assert p.parse_tts_client_message('{"context_id": "c", "flush": true}') == p.TextIn(None, "c", True)
    assert p.parse_tts_client_message(json.dumps(p.client_close_context("c"))) == p.CloseContextIn("c")
    assert p.parse_tts_client_message(json.dumps(p.client_close_socket())) == p.CloseSocketIn()


def test_tts_client_reader_takes_the_sdk_bos_and_keys_in_both_spellings() -> None:
    sdk_bos = (
        '{"text": " ", "try_trigger_generation": true, "voice_settings": null,'
        ' "generation_config": {"chunk_length_schedule": [50]}}'
    )
    assert p.parse_tts_client_message(sdk_bos) == p.TextIn(" ")
    assert p.parse_tts_client_message('{"text": " ", "xi_api_key": "k1"}').api_key == "k1"
    assert p.parse_tts_client_message('{"text": " ", "xi-api-key": "k2"}').api_key == "k2"
    with pytest.raises(ProtocolError):
        p.parse_tts_client_message('{"close_context": true}')
    with pytest.raises(ProtocolError):
        p.parse_tts_client_message('{"voice_settings": {}}')


def test_socket_alignment_is_relative_to_its_chunk_in_ms() -> None:
    frame = {"audio": base64.b64encode(b"\x01\x02").decode(), "isFinal": None, "contextId": "ctx-1",
             "alignment": {"chars": ["H", "e", "l"], "charStartTimesMs": [0, 30, 60], "charDurationsMs": [30, 30, 40]},
             "normalizedAlignment": {"chars": ["H"], "charStartTimesMs": [0], "charDurationsMs": [30]}}  # fmt: skip
    message = p.parse_tts_server_message(json.dumps(frame))
    assert isinstance(message, p.TTSAudioOut)
    assert message.audio == b"\x01\x02" and message.context_id == "ctx-1" and not message.is_final
    assert message.alignment == p.Alignment(("H", "e", "l"), (0.0, 0.03, 0.06), (0.03, 0.06, 0.1))
    assert message.normalized_alignment is not None and message.normalized_alignment.chars == ("H",)
    final = p.parse_tts_server_message('{"isFinal": true, "contextId": "ctx-1"}')
    assert isinstance(final, p.TTSAudioOut) and final.is_final and final.audio == b""


def test_rest_alignment_is_in_seconds() -> None:
    rest = {"characters": ["H", "e"], "character_start_times_seconds": [0.0, 0.05],
            "character_end_times_seconds": [0.05, 0.1]}  # fmt: skip
    alignment = p.Alignment.from_rest(rest)
    assert alignment == p.Alignment(("H", "e"), (0.0, 0.05), (0.05, 0.1))
    assert alignment is not None and alignment.to_rest() == rest
    with pytest.raises(ProtocolError):
        p.Alignment.from_rest({"characters": ["H"], "character_start_times_seconds": [],
                               "character_end_times_seconds": [0.1]})  # fmt: skip


def test_words_are_joined_from_characters_across_chunks() -> None:
    first = p.Alignment.from_socket({"chars": list("Hi the"), "charStartTimesMs": [0, 50, 100, 100, 150, 200],
                                     "charDurationsMs": [50, 50, 0, 50, 50, 50]})  # fmt: skip
    second = p.Alignment.from_socket({"chars": list("re. "), "charStartTimesMs": [0, 50, 100, 150],
                                      "charDurationsMs": [50, 50, 50, 0]})  # fmt: skip
    assert first is not None and second is not None
    joiner = p.WordJoiner()
    assert joiner.feed(first) == [("Hi", 0.0, 0.1)]
    assert joiner.feed(second.shifted(0.25)) == [("there.", 0.1, 0.4)]
    assert joiner.finish() == [] and joiner.characters_seen == 8


def test_alignment_of_words_covers_every_character() -> None:
    alignment = p.Alignment.of_words(" Hello  big", [("Hello", 1.0, 1.5), ("big", 1.6, 1.9)], offset_s=1.0)
    assert "".join(alignment.chars) == " Hello  big"
    joiner = p.WordJoiner()
    words = joiner.feed(alignment.shifted(1.0)) + joiner.finish()
    assert words == [("Hello", 1.0, 1.5), ("big", 1.6, pytest.approx(1.9))]
    assert p.Alignment.from_socket(alignment.to_socket()) is not None


def test_server_audio_messages_parse_back() -> None:
    alignment = p.Alignment(("a",), (0.0,), (0.1,))
    message = p.parse_tts_server_message(json.dumps(p.server_audio(b"xyz", alignment, "c9")))
    assert message == p.TTSAudioOut(b"xyz", alignment, alignment, "c9")
    assert p.parse_tts_server_message(json.dumps(p.server_is_final())) == p.TTSAudioOut(b"", is_final=True)


def test_socket_error_frames_are_typed() -> None:
    frame = p.server_tts_error("max_active_conversations", "Maximum simultaneous contexts ... (5)", 1008)
    message = p.parse_tts_server_message(json.dumps(frame))
    assert isinstance(message, p.TTSErrorOut)
    assert isinstance(message.to_error(), QuotaExceeded)
    unknown_voice = p.error_from_close(1008, "voice x not found", "voice_not_found")
    assert isinstance(unknown_voice, ConfigError) and isinstance(unknown_voice, InvalidRequest)
    assert isinstance(p.error_from_close(1008, "bad key", "invalid_api_key"), AuthenticationError)
    assert type(p.error_from_close(1008, "nope", "something_new")) is InvalidRequest
    internal = p.error_from_close(1011, "boom")
    assert type(internal) is ProviderError and internal.retryable


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (401, '{"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}', AuthenticationError),
        (404, '{"detail": {"status": "voice_not_found", "message": "no voice"}}', ConfigError),
        (401, '{"detail": {"status": "quota_exceeded", "message": "out"}}', QuotaExceeded),
        (429, '{"detail": {"status": "system_busy", "message": "busy"}}', RateLimitError),
        (422, '{"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "value_error.missing"}]}',
         InvalidRequest),
        (500, "upstream exploded", ProviderError),
    ],
)  # fmt: skip
def test_rest_errors_are_typed(status: int, body: str, error_type: type[Exception]) -> None:
    error = p.error_from_rest(status, body)
    assert isinstance(error, error_type)
    assert error.code == status
    if status == 422:
        assert "body.text: field required" in str(error)
    if status == 500:
        assert error.retryable and "upstream exploded" in str(error)
