"""The sans-IO Cartesia protocol: every message both ways, the variants real clients send, and the error tables."""

from __future__ import annotations

import base64
import json

import pytest
from speechbridge_cartesia.protocol import (
    CLOSE,
    FINALIZE,
    CancelIn,
    ChunkOut,
    DoneOut,
    ErrorOut,
    FlushDoneOut,
    GenerationRequest,
    OtherOut,
    OutputFormat,
    SSEDecoder,
    TimestampsOut,
    TranscriptOut,
    WordOut,
    client_cancel,
    error_from_rest,
    parse_batch_transcript,
    parse_server_message,
    parse_stt_command,
    parse_tts_message,
    read_voice_id,
    server_batch_transcript,
    server_chunk,
    server_done,
    server_error,
    server_flush_done,
    server_timestamps,
    server_transcript,
    sse_event,
    stt_encoding_for,
)

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AuthenticationError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
)


def test_stt_commands_accept_current_legacy_and_turns_spellings() -> None:
    assert parse_stt_command("finalize") == FINALIZE
    assert parse_stt_command("close") == CLOSE
    assert parse_stt_command("done") == CLOSE
    assert parse_stt_command('{"type": "close"}') == CLOSE
    with pytest.raises(InvalidRequest, match="accepted: 'finalize'"):
        parse_stt_command("stop")


def test_transcript_roundtrip_keeps_the_delta_verbatim_and_the_words() -> None:
    words = [WordOut("How", 0.0, 0.12), WordOut("are", 0.15, 0.25)]
    wire = server_transcript(" How are", True, words, duration=2.5, language="en", request_id="r1")
    message = parse_server_message(json.dumps(wire))
    assert message == TranscriptOut(" How are", True, tuple(words), 2.5, "en", "r1")


def test_stt_flush_done_done_and_both_error_shapes() -> None:
    assert parse_server_message(server_flush_done(request_id="r")) == FlushDoneOut()
    assert parse_server_message(server_done(request_id="r")) == DoneOut()
    current = parse_server_message(
        {
            "type": "error",
            "title": "Invalid model",
            "message": "The model is not valid",
            "error_code": "model_not_found",
            "status_code": 400,
        }
    )
    assert isinstance(current, ErrorOut)
    error = current.to_error()
    assert isinstance(error, InvalidRequest) and "Invalid model" in str(error) and "model_not_found" in str(error)
    legacy = parse_server_message({"type": "error", "message": "Invalid model: x", "code": 401})
    assert isinstance(legacy, ErrorOut) and isinstance(legacy.to_error(), AuthenticationError)
    tts_legacy = parse_server_message({"type": "error", "done": True, "error": "boom", "status_code": 500})
    assert isinstance(tts_legacy, ErrorOut) and tts_legacy.message == "boom"
    assert tts_legacy.to_error().retryable


def test_tts_server_messages_roundtrip() -> None:
    chunk = parse_server_message(server_chunk(b"\x01\x02", "ctx", 2))
    assert chunk == ChunkOut(b"\x01\x02", "ctx", 2)
    words = (WordOut("Hello", 0.0, 0.4), WordOut("world", 0.5, 0.9))
    assert parse_server_message(server_timestamps(words, "ctx")) == TimestampsOut(words, "ctx")
    assert parse_server_message(server_flush_done(context_id="ctx", flush_id=1)) == FlushDoneOut(1, "ctx")
    assert parse_server_message(server_done(context_id="ctx")) == DoneOut("ctx")
    assert parse_server_message({"type": "phoneme_timestamps", "context_id": "ctx"}) == OtherOut(
        "phoneme_timestamps", "ctx"
    )
    error = parse_server_message(server_error("no", 429, context_id="ctx"))
    assert isinstance(error, ErrorOut) and error.context_id == "ctx"
    assert isinstance(error.to_error(), RateLimitError)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        '["a list"]',
        '{"no": "type"}',
        '{"type": "transcript"}',
        '{"type": "transcript", "text": 3}',
        '{"type": "transcript", "text": "a", "is_final": "yes"}',
        '{"type": "chunk", "data": "***"}',
        '{"type": "timestamps", "word_timestamps": {"words": ["a"], "start": [], "end": [1]}}',
        '{"type": "transcript", "text": "a", "words": [{"word": "a"}]}',
    ],
)
def test_malformed_server_messages_are_protocol_errors(frame: str) -> None:
    with pytest.raises(ProtocolError):
        parse_server_message(frame)


def test_generation_request_roundtrip_and_sdk_variants() -> None:
    request = GenerationRequest(
        transcript="Hello, ",
        voice_id="v1",
        model_id="sonic-3",
        output_format=OutputFormat("raw", "pcm_f32le", 44100),
        context_id="turn-42",
        language="en",
        continue_=True,
        flush=True,
        add_timestamps=True,
        generation_config={"speed": 1.2},
    )
    wire = request.to_json()
    assert wire["voice"] == {"mode": "id", "id": "v1"} and wire["continue"] is True
    assert parse_tts_message(json.dumps(wire)) == request
    legacy = {
        **wire,
        "voice": "v1",
        "stream": True,
        "duration": None,
        "language": None,
        "generation_config": None,
        "pronunciation_dict_id": None,
        "use_original_timestamps": False,
    }
    parsed = parse_tts_message(json.dumps(legacy))
    assert isinstance(parsed, GenerationRequest) and parsed.voice_id == "v1" and parsed.language is None
    assert parse_tts_message(json.dumps(client_cancel("turn-42"))) == CancelIn("turn-42")


def test_generation_request_rejections_name_the_field() -> None:
    base = GenerationRequest("hi", "v", context_id="c").to_json()
    with pytest.raises(InvalidRequest, match="sample_rate"):
        parse_tts_message(
            json.dumps({**base, "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 11025}})
        )
    with pytest.raises(InvalidRequest, match="encoding"):
        parse_tts_message(
            json.dumps({**base, "output_format": {"container": "raw", "encoding": "pcm_s24le", "sample_rate": 16000}})
        )
    with pytest.raises(InvalidRequest, match="container"):
        parse_tts_message(json.dumps({**base, "output_format": {"container": "ogg", "sample_rate": 16000}}))
    with pytest.raises(InvalidRequest, match="context_id"):
        parse_tts_message(json.dumps({key: value for key, value in base.items() if key != "context_id"}))
    with pytest.raises(InvalidRequest, match="voice mode"):
        read_voice_id({"mode": "embedding", "embedding": [0.1]})
    with pytest.raises(InvalidRequest, match="transcript"):
        parse_tts_message(json.dumps({**base, "transcript": None}))


def test_output_formats_name_the_audio_they_hold() -> None:
    assert OutputFormat("raw", "pcm_mulaw", 8000).audio_format == AudioFormat("mulaw", 8000)
    assert OutputFormat("wav", "pcm_s16le", 16000).audio_format == AudioFormat("wav", 16000)
    assert OutputFormat("mp3", None, 44100, 128000).to_json() == {
        "container": "mp3",
        "sample_rate": 44100,
        "bit_rate": 128000,
    }
    assert stt_encoding_for(AudioFormat("alaw", 8000)) == "pcm_alaw"
    assert stt_encoding_for(AudioFormat("pcm_s16le", 16000, 2)) is None
    assert stt_encoding_for(AudioFormat("wav")) is None


def test_batch_transcript_roundtrip() -> None:
    body = server_batch_transcript(
        "Hello world.", [WordOut("Hello", 0.0, 0.4)], duration=1.2, language="en", request_id="r"
    )
    result = parse_batch_transcript(body)
    assert result.text == "Hello world." and result.words == (WordOut("Hello", 0.0, 0.4),) and result.is_final
    assert "words" not in server_batch_transcript("x", None, duration=None, language="en", request_id="r")
    with pytest.raises(ProtocolError):
        parse_batch_transcript({"type": "transcript"})


def test_sse_decoder_reassembles_events_across_chunks() -> None:
    stream = sse_event({"type": "chunk", "data": base64.b64encode(b"ab").decode()}) + sse_event({"type": "done"})
    decoder = SSEDecoder()
    messages = [m for i in range(0, len(stream), 7) for m in decoder.feed(stream[i : i + 7])] + decoder.close()
    assert [m["type"] for m in messages] == ["chunk", "done"]
    assert SSEDecoder().feed(b'event: x\r\ndata: {"type": "done"}\r\n\r\n') == [{"type": "done"}]
    with pytest.raises(ProtocolError):
        SSEDecoder().feed(b"data: nope\n\n")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequest),
        (401, AuthenticationError),
        (402, QuotaExceeded),
        (403, AuthenticationError),
        (422, InvalidRequest),
        (429, RateLimitError),
        (500, ProviderError),
    ],
)
def test_rest_errors_by_status_with_json_or_text_bodies(status: int, kind: type[Exception]) -> None:
    body = json.dumps({"error_code": "x_code", "title": "Title", "message": "went wrong", "request_id": "r"})
    error = error_from_rest(status, body)
    assert type(error) is kind and "Title: went wrong" in str(error) and "x_code" in str(error)
    assert type(error_from_rest(status, "Title: plain text")) is kind
    assert isinstance(error_from_rest(503, "").retryable, bool) and error_from_rest(503, "").retryable


def test_later_requests_on_a_context_may_leave_out_what_the_first_set() -> None:
    first = GenerationRequest(
        "Hello, ",
        "v1",
        output_format=OutputFormat("raw", "pcm_s16le", 16000),
        context_id="c",
        continue_=True,
        add_timestamps=True,
    )
    later = parse_tts_message(json.dumps({"context_id": "c", "transcript": "", "continue": False}), {"c": first})
    assert isinstance(later, GenerationRequest)
    assert (later.voice_id, later.output_format, later.add_timestamps) == ("v1", first.output_format, True)
    assert later.transcript == "" and not later.continue_
    with pytest.raises(InvalidRequest, match="voice"):
        parse_tts_message(json.dumps({"context_id": "d", "transcript": "", "continue": False}), {"c": first})
