"""hibari speaks, pocketsphinx listens: the local engines must understand each other."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from speechbridge_local import LocalSTT

from speechbridge.events import Transcript, TurnEnded

Wer = Callable[[Sequence[str], Sequence[str]], float]


async def test_batch_round_trip(stt: LocalSTT, speech: dict[str, bytes], wer: Wer) -> None:
    texts = list(speech)
    assert len(texts) >= 10
    hypotheses = [(await stt.transcribe(speech[text], format="pcm_16000")).text for text in texts]
    assert all(hypotheses), hypotheses
    assert wer(texts, hypotheses) <= 0.25, list(zip(texts, hypotheses, strict=True))


async def test_streaming_round_trip_one_turn_per_sentence(
    stt: LocalSTT, speech: dict[str, bytes], pause: Callable[[float], bytes], wer: Wer
) -> None:
    texts = list(speech)
    async with stt.stream(format="pcm_16000", interim_results=False) as stream:
        for text in texts:
            await stream.send_audio(pause(1.0) + speech[text])
        await stream.send_audio(pause(1.0))
        await stream.end()
        events = await stream.collect()
    turns = [e.text for e in events if isinstance(e, TurnEnded)]
    assert len(turns) == len(texts) and all(turns), turns
    assert wer(texts, turns) <= 0.25, list(zip(texts, turns, strict=True))
    finals = [e for e in events if isinstance(e, Transcript)]
    assert [final.text for final in finals] == turns
