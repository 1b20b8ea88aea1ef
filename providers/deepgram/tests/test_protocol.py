"""The sans-IO Deepgram protocol against the message examples of the protocol notes, both directions."""

from __future__ import annotations

import json

import pytest
from speechbridge_deepgram import protocol as p

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
)
from speechbridge.events import Word

RESULTS = {
    "type": "Results",
    "channel_index": [0, 1],
    "duration": 1.04,
    "start": 0.0,
    "is_final": True,
    "speech_final": True,
    "from_finalize": False,
    "channel": {
        "alternatives": [
            {
                "transcript": "another big",
                "confidence": 0.96,
                "words": [
                    {"word": "another", "start": 0.30, "end": 0.80, "confidence": 0.96, "punctuated_word": "Another"},
                    {"word": "big", "start": 0.85, "end": 1.04, "confidence": 0.96, "punctuated_word": "big."},
                ],
            }
        ]
    },
    "metadata": {
        "request_id": "b1a2",
        "model_info": {"name": "general-nova-3", "version": "x", "arch": "nova-3"},
        "model_uuid": "1abfe86b",
    },
}


def test_results_example_parses_with_punctuated_words() -> None:
    results = p.parse_server_message(json.dumps(RESULTS))
    assert results == p.Results(
        "another big",
        True,
        True,
        False,
        0.0,
        1.04,
        (Word("Another", 0.30, 0.80, 0.96), Word("big.", 0.85, 1.04, 0.96)),
        0.96,
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 2.395}, p.UtteranceEnd(2.395)),
        ({"type": "SpeechStarted", "channel": [0, 1], "timestamp": 9.54}, p.SpeechStartedMessage(9.54)),
        ({"type": "Metadata", "request_id": "b1a2", "duration": 25.9, "channels": 1}, p.Metadata("b1a2", 25.9)),
        (
            {"type": "Metadata", "request_id": "r", "model_name": "aura-2-thalia-en"},
            p.SpeakMetadata("r", "aura-2-thalia-en"),
        ),
        ({"type": "Flushed", "sequence_id": 0}, p.Flushed(0)),
        ({"type": "Cleared", "sequence_id": 1}, p.Cleared(1)),
        ({"type": "Warning", "description": "Flush limit reached", "code": "W"}, p.Warning("Flush limit reached", "W")),
        (
            {"type": "Error", "variant": "SchemaError", "description": "could not parse message", "message": "{bad"},
            p.ErrorMessage("could not parse message", "SchemaError"),
        ),
    ],
)
def test_server_message_examples(message: dict[str, object], expected: object) -> None:
    assert p.parse_server_message(json.dumps(message)) == expected


def test_unknown_server_types_are_kept_as_other() -> None:
    assert p.parse_server_message('{"type": "ConfigureSuccess", "keyterms": []}') == p.Other(
        "ConfigureSuccess", {"type": "ConfigureSuccess", "keyterms": []}
    )


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1]",
        '{"no": "type"}',
        '{"type": "Results"}',
        '{"type": "Results", "channel": {"alternatives": []}}',
        '{"type": "Flushed", "sequence_id": "x"}',
        '{"type": "UtteranceEnd", "last_word_end": "late"}',
    ],
)
def test_malformed_server_messages_are_protocol_errors(frame: str) -> None:
    with pytest.raises(ProtocolError):
        p.parse_server_message(frame)


def test_server_builders_round_trip_through_the_client_parser() -> None:
    results = p.Results("hi there", True, True, True, 0.5, 0.7, (Word("hi", 0.5, 0.8), Word("there", 0.9, 1.2)))
    built = p.server_results(results, request_id="r", model="nova-3")
    assert built["channel_index"] == [0, 1] and built["metadata"]["request_id"] == "r"
    parsed = p.parse_server_message(json.dumps(built))
    assert isinstance(parsed, p.Results)
    assert (parsed.transcript, parsed.speech_final, parsed.from_finalize, parsed.start) == ("hi there", True, True, 0.5)
    assert [word.text for word in parsed.words] == ["hi", "there"] and parsed.words[0].confidence == 1.0
    assert p.parse_server_message(json.dumps(p.server_utterance_end(2.0))) == p.UtteranceEnd(2.0)
    assert p.parse_server_message(json.dumps(p.server_speech_started(0.3))) == p.SpeechStartedMessage(0.3)
    assert p.parse_server_message(json.dumps(p.server_metadata("r", 1.5, "nova-3", "t"))) == p.Metadata("r", 1.5)
    assert p.parse_server_message(json.dumps(p.server_speak_metadata("r", "m"))) == p.SpeakMetadata("r", "m")
    assert p.parse_server_message(json.dumps(p.server_flushed(3))) == p.Flushed(3)
    assert p.parse_server_message(json.dumps(p.server_cleared(4))) == p.Cleared(4)
    assert p.parse_server_message(json.dumps(p.server_error("bad", "{x"))) == p.ErrorMessage("bad", "SchemaError")


def test_client_messages_are_the_documented_json_and_parse_back() -> None:
    assert p.client_keep_alive() == {"type": "KeepAlive"}
    assert p.client_finalize() == {"type": "Finalize"}
    assert p.client_close_stream() == {"type": "CloseStream"}
    assert p.client_speak("Hello there.") == {"type": "Speak", "text": "Hello there."}
    assert [p.client_flush(), p.client_clear(), p.client_close()] == [{"type": t} for t in ("Flush", "Clear", "Close")]
    built = [
        p.client_keep_alive(),
        p.client_finalize(),
        p.client_close_stream(),
        p.client_speak("a"),
        p.client_flush(),
        p.client_clear(),
        p.client_close(),
    ]
    parsed = [p.parse_client_message(json.dumps(message)) for message in built]
    assert parsed == [p.KeepAlive(), p.Finalize(), p.CloseStream(), p.Speak("a"), p.Flush(), p.Clear(), p.Close()]
    assert p.parse_client_message('{"type": "Finalize", "channel": 0}') == p.Finalize(0)


@pytest.mark.parametrize("frame", ['{"type": "Speak"}', '{"type": "Speak", "text": 3}', '{"type": "Dance"}', "{"])
def test_malformed_client_messages_are_protocol_errors(frame: str) -> None:
    with pytest.raises(ProtocolError):
        p.parse_client_message(frame)


def test_listen_response_round_trip() -> None:
    body = p.listen_response(
        "hello world",
        (Word("hello", 0.1, 0.4), Word("world", 0.5, 0.9)),
        request_id="r",
        duration=1.0,
        model="nova-3",
        created="t",
        language="en",
    )
    assert body["metadata"]["duration"] == 1.0 and body["results"]["channels"][0]["detected_language"] == "en"
    text, words, confidence, language = p.parse_listen_response(json.loads(json.dumps(body)))
    assert (text, [w.text for w in words], confidence, language) == ("hello world", ["hello", "world"], 1.0, "en")
    with pytest.raises(ProtocolError):
        p.parse_listen_response({"results": {"channels": []}})


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            400,
            '{"err_code": "Bad Request", "err_msg": "Bad Request: failed to process audio: corrupt", "request_id": ""}',
            AudioFormatError,
        ),
        (400, '{"category": "INVALID_JSON", "message": "Invalid JSON submitted.", "request_id": "u"}', InvalidRequest),
        (
            401,
            '{"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "u"}',
            AuthenticationError,
        ),
        (402, "{}", QuotaExceeded),
        (429, "slow down", RateLimitError),
        (503, "down", ProviderError),
    ],
)
def test_rest_errors_are_typed(status: int, body: str, error: type[Exception]) -> None:
    made = p.error_from_rest(status, body)
    assert type(made) is error
    assert made.retryable == (status >= 500 or status == 429)


def test_rest_error_message_comes_from_the_body() -> None:
    assert "Invalid credentials." in str(
        p.error_from_rest(401, json.dumps(p.rest_error_body(401, "Invalid credentials.", "u")))
    )


def test_close_codes_are_typed() -> None:
    assert isinstance(p.error_from_close(1008, "DATA-0000: bad audio"), AudioFormatError)
    assert isinstance(p.error_from_close(1008, "policy"), InvalidRequest)
    net = p.error_from_close(1011, "NET-0001: no audio received")
    assert type(net) is ProviderError and net.retryable and net.code == 1011


@pytest.mark.parametrize(
    ("format", "websocket", "query"),
    [
        ("pcm_16000", True, [("encoding", "linear16"), ("sample_rate", "16000")]),
        ("pcm_16000", False, [("encoding", "linear16"), ("sample_rate", "16000"), ("container", "none")]),
        ("mulaw_8000", True, [("encoding", "mulaw"), ("sample_rate", "8000")]),
        ("alaw_16000", False, [("encoding", "alaw"), ("sample_rate", "16000"), ("container", "none")]),
        ("wav_48000", False, [("encoding", "linear16"), ("container", "wav"), ("sample_rate", "48000")]),
        ("mp3", False, [("encoding", "mp3")]),
        ("ogg_opus", False, [("encoding", "opus")]),
        ("flac_16000", False, [("encoding", "flac"), ("sample_rate", "16000")]),
        ("pcm_22050", True, None),
        ("mulaw_24000", False, None),
        ("f32_16000", False, None),
        ("wav_48000", True, None),
        ("mp3_44100", False, None),
    ],
)
def test_speak_query_asks_only_for_what_deepgram_makes(format: str, websocket: bool, query: object) -> None:
    made = p.speak_query(AudioFormat.parse(format), websocket=websocket)
    assert made == query
    if made is not None:
        requested, produced = AudioFormat.parse(format), p.speak_format(dict(made), websocket=websocket)
        assert produced.encoding == requested.encoding and produced.sample_rate
        assert requested.sample_rate in (None, produced.sample_rate)


def test_speak_format_defaults_and_refusals() -> None:
    assert p.speak_format({}, websocket=False) == AudioFormat("wav", 24000)
    assert p.speak_format({}, websocket=True) == AudioFormat.pcm16(24000)
    assert p.speak_format({"encoding": "mulaw"}, websocket=True) == AudioFormat("mulaw", 8000)
    for params, websocket in (
        ({"encoding": "mp3"}, True),
        ({"encoding": "linear16", "sample_rate": "22050"}, False),
        ({"encoding": "mulaw", "container": "wav"}, False),
        ({"sample_rate": "fast"}, False),
    ):
        with pytest.raises(AudioFormatError, match=r"accepted|integer"):
            p.speak_format(params, websocket=websocket)


def test_stt_wire_format_names_the_accepted() -> None:
    assert p.stt_wire_format("linear16", 16000) == AudioFormat.pcm16(16000)
    with pytest.raises(AudioFormatError, match="linear16, mulaw, alaw"):
        p.stt_wire_format("speex", 16000)
