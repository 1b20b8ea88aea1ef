"""protocol.py against the message examples of the Gradium protocol notes, both directions, with every variant seen."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from speechbridge_gradium.protocol import (
    STT_INPUT_FORMATS,
    TTS_OUTPUT_FORMATS,
    AudioIn,
    AudioOut,
    EndOfStreamIn,
    EndOfStreamOut,
    EndTextOut,
    ErrorOut,
    FlushedOut,
    FlushIn,
    OtherOut,
    ReadyOut,
    Setup,
    StepOut,
    TextIn,
    TextOut,
    client_audio,
    client_end_of_stream,
    client_flush,
    client_setup,
    client_text,
    error_from_code,
    error_from_rest,
    parse_client_message,
    parse_server_message,
    read_json_config,
    server_audio,
    server_end_of_stream,
    server_end_text,
    server_error,
    server_flushed,
    server_step,
    server_stt_ready,
    server_text,
    server_tts_ready,
    with_request,
)

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AuthenticationError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
)

# --- client -> server -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        # docs, pipecat: json_config as an object
        '{"type":"setup","model_name":"default","input_format":"pcm_16000",'
        '"json_config":{"language":"en","delay_in_frames":8}}',
        # the official SDK: json_config as a JSON string, "type" last
        '{"model_name": "default", "input_format": "pcm_16000", '
        '"json_config": "{\\"language\\": \\"en\\", \\"delay_in_frames\\": 8}", "type": "setup"}',
    ],
)
def test_stt_setup_reads_json_config_as_object_or_string(frame: str) -> None:
    setup = parse_client_message(frame)
    assert setup == Setup(kind="stt", input_format="pcm_16000", json_config={"language": "en", "delay_in_frames": 8})


def test_a_bare_sdk_setup_gets_the_defaults() -> None:
    setup = parse_client_message('{"input_format": "pcm", "type": "setup"}')
    assert setup == Setup(kind="stt", model_name="default", input_format="pcm")
    assert STT_INPUT_FORMATS["pcm"] == AudioFormat.pcm16(24000)  # bare pcm is 24 kHz in, 48 kHz out
    assert TTS_OUTPUT_FORMATS["pcm"] == AudioFormat.pcm16(48000)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            '{"type":"setup","model_name":"default","voice_id":"YTpq7expH9539ERJ","output_format":"pcm",'
            '"json_config":{"padding_bonus":-1.0}}',
            Setup(kind="tts", voice_id="YTpq7expH9539ERJ", output_format="pcm", json_config={"padding_bonus": -1.0}),
        ),
        (  # pipecat: multiplexed, no model_name
            '{"type": "setup", "output_format": "pcm", "voice_id": "YTpq7expH9539ERJ", "close_ws_on_eos": false, '
            '"client_req_id": "09f0b1be-02d9-47df-bd94-0677432577c0"}',
            Setup(
                kind="tts",
                voice_id="YTpq7expH9539ERJ",
                output_format="pcm",
                client_req_id="09f0b1be-02d9-47df-bd94-0677432577c0",
                close_ws_on_eos=False,
            ),
        ),
        (  # livekit: voice name, json_config as a string
            '{"type": "setup", "model_name": "default", "output_format": "pcm", "voice": "Emma", '
            '"json_config": "{\\"padding_bonus\\": -0.5}"}',
            Setup(kind="tts", voice="Emma", output_format="pcm", json_config={"padding_bonus": -0.5}),
        ),
    ],
)
def test_tts_setups_of_every_client(frame: str, expected: Setup) -> None:
    assert parse_client_message(frame) == expected


def test_client_messages_of_the_examples() -> None:
    assert parse_client_message('{"type":"audio","audio":"AAAAAAAA"}') == AudioIn(bytes(6))
    assert parse_client_message('{"type":"flush","flush_id":1}') == FlushIn(1)
    assert parse_client_message('{"type":"flush","flush_id":"1"}') == FlushIn("1")  # pipecat's string, kept
    assert parse_client_message('{"type":"end_of_stream"}') == EndOfStreamIn()
    assert parse_client_message('{"type":"end_of_stream","client_req_id":"req-0"}') == EndOfStreamIn("req-0")
    text = '{"text": "Hello there from pipecat.", "type": "text", "client_req_id": "c1"}'
    assert parse_client_message(text) == TextIn("Hello there from pipecat.", "c1")


def test_client_builders_round_trip() -> None:
    setup = Setup(
        kind="stt", input_format="ulaw_8000", json_config={"language": "fr"}, client_req_id="r", close_ws_on_eos=False
    )
    message = client_setup(setup)
    assert message == {
        "type": "setup",
        "model_name": "default",
        "input_format": "ulaw_8000",
        "json_config": {"language": "fr"},
        "client_req_id": "r",
        "close_ws_on_eos": False,
    }
    assert parse_client_message(json.dumps(message)) == setup
    assert "close_ws_on_eos" not in client_setup(Setup(kind="stt", input_format="wav"))
    assert "json_config" not in client_setup(Setup(kind="stt", input_format="wav"))
    audio = bytes(range(256)) * 15
    assert parse_client_message(json.dumps(client_audio(audio, "r"))) == AudioIn(audio, "r")
    assert client_audio(b"\x00\x01")["audio"] == base64.b64encode(b"\x00\x01").decode()
    assert client_flush(3) == {"type": "flush", "flush_id": 3}
    assert client_text("hi", "r") == {"type": "text", "text": "hi", "client_req_id": "r"}
    assert client_end_of_stream() == {"type": "end_of_stream"}


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        ("not json", ProtocolError, "not a JSON message"),
        ("[1, 2]", ProtocolError, "string 'type'"),
        ('{"audio": "AAAA"}', ProtocolError, "string 'type'"),
        ('{"type": "audio", "audio": "@@@"}', ProtocolError, "not valid base64"),
        ('{"type": "audio", "audio": 5}', ProtocolError, "base64 string"),
        ('{"type": "text"}', ProtocolError, "no 'text'"),
        ('{"type": "text", "text": 7}', ProtocolError, "malformed 'text'"),
        ('{"type": "dance"}', ProtocolError, "unknown message type 'dance'"),
        ('{"type": "setup", "input_format": "wav", "json_config": "{oops"}', InvalidRequest, "not valid JSON"),
        ('{"type": "setup", "input_format": "wav", "json_config": [1]}', InvalidRequest, "JSON object"),
    ],
)
def test_malformed_client_messages_are_refused(frame: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parse_client_message(frame)


def test_read_json_config_accepts_absent_empty_object_and_string() -> None:
    assert read_json_config(None) == {} == read_json_config("")
    assert read_json_config('{"delay_in_tokens": 8}') == {"delay_in_tokens": 8}
    assert read_json_config({"language": "de"}) == {"language": "de"}
    assert read_json_config('{"temp": 0.2}') == {"temp": 0.2}


# --- server -> client -------------------------------------------------------------------------------------------


def test_ready_messages_of_stt_and_tts() -> None:
    stt = (
        '{"type":"ready","request_id":"550e8400-e29b-41d4-a716-446655440000","model_name":"default",'
        '"sample_rate":24000,"frame_size":1920,"delay_in_frames":10,"text_stream_names":[]}'
    )
    assert parse_server_message(stt) == ReadyOut("550e8400-e29b-41d4-a716-446655440000", 24000, 1920, 10)
    tts = (
        '{"type":"ready","request_id":"r","model_name":"default","sample_rate":48000,"frame_size":3840,'
        '"audio_stream_names":["audio"],"text_stream_names":["text"],"client_req_id":"req-0"}'
    )
    assert parse_server_message(tts) == ReadyOut("r", 48000, 3840, None, "req-0")
    livekit = '{"type":"ready","request_id":"r","frame_size":1920,"delay_in_tokens":6}'
    assert parse_server_message(livekit).delay_in_frames == 6  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"text","text":"Hello","start_s":0.5,"stream_id":0}',
        '{"type":"text","text":"Hello","start_s":0.5}',  # no stream_id
        '{"type":"text","text":"Hello","start_s":0.5,"stream_id":null}',  # the old docs' null
    ],
)
def test_stt_text_with_or_without_stream_id(frame: str) -> None:
    assert parse_server_message(frame) == TextOut("Hello", 0.5)


def test_server_messages_of_the_examples() -> None:
    assert parse_server_message('{"type":"end_text","stop_s":2.5,"stream_id":0}') == EndTextOut(2.5)
    tts_text = '{"type":"text","text":"Hello","start_s":0.2,"stop_s":0.6,"stream_id":0}'
    assert parse_server_message(tts_text) == TextOut("Hello", 0.2, 0.6)
    step = (
        '{"type":"step","vad":[{"horizon_s":0.5,"inactivity_prob":0.05},{"horizon_s":1.0,"inactivity_prob":0.08},'
        '{"horizon_s":2.0,"inactivity_prob":0.12},{"horizon_s":3.0,"inactivity_prob":0.2}],"step_idx":5,'
        '"step_duration_s":0.08,"total_duration_s":0.4}'
    )
    assert parse_server_message(step) == StepOut(((0.5, 0.05), (1.0, 0.08), (2.0, 0.12), (3.0, 0.2)), 5, 0.4)
    three = '{"type":"step","vad":[{"horizon_s":2.0,"inactivity_prob":0.9},{"horizon_s":0.5,"inactivity_prob":0.1}]}'
    assert parse_server_message(three).vad == ((0.5, 0.1), (2.0, 0.9))  # type: ignore[union-attr]
    audio = parse_server_message('{"type":"audio","audio":"AAAA","start_s":0.0,"stop_s":0.08,"stream_id":0}')
    assert audio == AudioOut(bytes(3), 0.0, 0.08)
    assert parse_server_message('{"type":"end_of_stream"}') == EndOfStreamOut()
    assert parse_server_message('{"type":"end_of_stream","client_req_id":"req-1"}') == EndOfStreamOut("req-1")


@pytest.mark.parametrize("flush_id", [1, "1", 0, "flush-a"])
def test_flushed_keeps_the_flush_id_and_its_type(flush_id: Any) -> None:
    message = parse_server_message(json.dumps(server_flushed(flush_id)))
    assert message == FlushedOut(flush_id) and type(message.flush_id) is type(flush_id)  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["need_more_text", "session_info", "pong"])
def test_unknown_server_messages_are_ignored_not_fatal(kind: str) -> None:
    assert parse_server_message(json.dumps({"type": kind, "client_req_id": "req-0", "x": 1})) == OtherOut(kind, "req-0")


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ("{", "not a JSON message"),
        (b"\xff\xfe", "not a JSON message"),
        ('"ready"', "string 'type'"),
        ('{"type": 3}', "string 'type'"),
        ('{"type":"text","start_s":0.5}', "no 'text'"),
        ('{"type":"text","text":"a","start_s":"soon"}', "malformed 'start_s'"),
        ('{"type":"end_text"}', "no 'stop_s'"),
        ('{"type":"step"}', "no 'vad'"),
        ('{"type":"step","vad":[{"horizon_s":1.0}]}', "malformed 'vad'"),
        ('{"type":"step","vad":"high"}', "malformed 'vad'"),
        ('{"type":"audio","audio":"%%%"}', "not valid base64"),
        ('{"type":"ready","client_req_id":[1]}', "malformed 'client_req_id'"),
    ],
)
def test_malformed_server_messages_are_protocol_errors(frame: str | bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_server_message(frame)


def test_server_builders_satisfy_the_strictest_client() -> None:
    ready = server_stt_ready("rid", "default", 16000, 8)
    assert {"model_name", "sample_rate", "frame_size", "delay_in_frames", "text_stream_names", "request_id"} <= set(
        ready
    )  # the Rust client's required fields
    assert ready["frame_size"] == 1280
    tts_ready = server_tts_ready("rid", "default", 48000)
    assert {"model_name", "sample_rate", "frame_size", "audio_stream_names", "text_stream_names", "request_id"} <= set(
        tts_ready
    )
    step = server_step(4, (0.1, 0.2, 0.3, 0.4))
    assert len(step["vad"]) == 4 and step["total_duration_s"] == 0.4 and step["step_duration_s"] == 0.08
    assert parse_server_message(json.dumps(step)).vad[2] == (2.0, 0.3)  # type: ignore[union-attr]
    assert server_text("hi", 0.5)["stream_id"] == 0 and "stop_s" not in server_text("hi", 0.5)
    assert parse_server_message(json.dumps(server_end_text(1.5))) == EndTextOut(1.5)
    assert parse_server_message(json.dumps(server_audio(b"ab", 0.0, 0.08))) == AudioOut(b"ab", 0.0, 0.08)
    assert parse_server_message(json.dumps(server_end_of_stream())) == EndOfStreamOut()
    stamped = with_request(server_error("boom", 1011), "req-3")
    assert parse_server_message(json.dumps(stamped)) == ErrorOut("boom", 1011, "req-3")
    assert with_request(server_end_of_stream(), None) == {"type": "end_of_stream"}


# --- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "error_type", "retryable"),
    [
        (1008, "API key is revoked or expired", AuthenticationError, False),
        (1008, "No authentication provided", AuthenticationError, False),
        (1008, "out of credits", QuotaExceeded, False),
        (1008, "organization concurrency limit reached", QuotaExceeded, False),
        (1008, "missing setup message", InvalidRequest, False),
        (1002, "protocol error", InvalidRequest, False),
        (1003, "unknown model bad", InvalidRequest, False),
        (1011, "no worker available", ProviderError, True),
        (1011, "parsing keywords failed", ProviderError, True),
        (1012, "service restart", ProviderError, True),
        (None, "something broke", ProviderError, True),
    ],
)
def test_error_codes_become_typed_errors(
    code: int | None, message: str, error_type: type[ProviderError], retryable: bool
) -> None:
    error = error_from_code(code, message)
    assert type(error) is error_type and error.retryable is retryable and error.code == code
    assert message in str(error) and error.provider == "gradium"
    frame = {"type": "error", "message": message} | ({"code": code} if code is not None else {})
    parsed = parse_server_message(json.dumps(frame))
    assert isinstance(parsed, ErrorOut) and type(parsed.to_error()) is error_type


@pytest.mark.parametrize(
    ("status", "body", "error_type", "code", "retryable", "text"),
    [
        (500, "error from server 1008: API key is revoked or expired", AuthenticationError, 1008, False, "revoked"),
        (500, "error from server 1011: worker failed\n", ProviderError, 1011, True, "worker failed"),
        (500, "error from server 1003: unknown model x", InvalidRequest, 1003, False, "unknown model x"),
        (500, "unsupported content type for SST 'audio/mpeg'", ProviderError, 500, True, "audio/mpeg"),
        (401, '{"detail": "Invalid API key"}', AuthenticationError, 401, False, "Invalid API key"),
        (402, '{"detail": "Not enough credits"}', QuotaExceeded, 402, False, "Not enough credits"),
        (400, '{"error": "bad voice", "code": 400}', InvalidRequest, 400, False, "bad voice"),
        (422, '{"detail": [{"loc": ["body", "name"], "msg": "field required"}]}', InvalidRequest, 422, False, "field"),
        (404, "", InvalidRequest, 404, False, ""),
        (503, "", ProviderError, 503, True, "HTTP 503"),
    ],
)
def test_rest_error_bodies_become_typed_errors(
    status: int, body: str, error_type: type[ProviderError], code: int, retryable: bool, text: str
) -> None:
    error = error_from_rest(status, body)
    assert type(error) is error_type and error.code == code and error.retryable is retryable
    assert text in str(error)
