"""Serving fronts: secrets stay out of the logs, a busy port is a typed error, uvicorn is an optional extra."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

import pytest

from speechbridge import serving
from speechbridge.errors import MissingDependency, TransportError
from speechbridge.serving import lazy_front


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('1.2.3.4:5 - "WebSocket /api/speech/asr?token=gdt_secret" [accepted]', "/api/speech/asr?token=***"),
        ("POST /api/post/speech/asr?model=default&api_key=sk-1 HTTP/1.1", "?model=default&api_key=*** HTTP"),
        ("GET http://host/x?access_token=abc&n=1", "http://host/x?access_token=***&n=1"),
    ],
)
def test_redact_masks_secret_query_values(text: str, shown: str):
    redacted = serving.redact(text)
    assert shown in redacted
    assert "secret" not in redacted and "sk-1" not in redacted and "abc" not in redacted


def test_redact_leaves_other_text_alone():
    for text in ("Application startup complete.", 'GET /api/voices/?limit=0 HTTP/1.1" 200', "what? nothing"):
        assert serving.redact(text) == text


def test_the_filter_masks_arguments_and_messages(caplog: pytest.LogCaptureFixture):
    logger = logging.getLogger("test_serving.redact")
    logger.addFilter(serving.RedactSecrets())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:1", "/api/speech/tts?token=gdt_one")
        logger.info("GET /x?key=gdt_two")
        logger.info("%d requests", 3)
    assert [record.getMessage() for record in caplog.records] == [
        '127.0.0.1:1 - "WebSocket /api/speech/tts?token=***" [accepted]',
        "GET /x?key=***",
        "3 requests",
    ]


def test_listen_binds_any_free_port_and_names_a_busy_one():
    with serving.listen("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        assert port > 0
        with pytest.raises(TransportError, match=rf"cannot listen on 127\.0\.0\.1:{port}: "):
            serving.listen("127.0.0.1", port)


async def test_serve_without_uvicorn_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(MissingDependency, match=r"pip install 'speechbridge\[server\]'") as caught:
        await serving.serve(_hello, port=0)
    assert (caught.value.module, caught.value.extra) == ("uvicorn", "server")


async def test_serve_answers_on_the_port_it_announces():
    announced: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serving.serve(_hello, port=0, log_level="warning", on_listening=announced.set_result))
    try:
        url = await asyncio.wait_for(announced, 10)
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
        writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello")
    with socket.create_server((host, int(port))):  # the port is free again
        pass


async def _hello(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})


def test_a_lazy_front_needs_the_server_extra_only_when_a_front_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = lazy_front("speechbridge_gradium.server")
    assert factory.__doc__ == "The API served by ``stt`` and ``tts``: ``speechbridge_gradium.server.make_app``."
    monkeypatch.setitem(sys.modules, "python_multipart", None)  # as if the extra were only partly installed
    with pytest.raises(MissingDependency, match=r"'python-multipart' package: pip install 'speechbridge\[server\]'"):
        factory(None, None)
