"""The English sentences the benchmarks speak with the local TTS: everyday requests and statements, 2 to 3 s each."""

from __future__ import annotations

from typing import Final

__all__ = ["SENTENCES"]

SENTENCES: Final = (
    "The train to the airport leaves from platform four.",
    "Remember to bring your passport and a warm jacket.",
    "Our neighbours adopted a small brown dog last week.",
    "The museum is closed on Mondays during the winter.",
    "She finished reading the novel in a single afternoon.",
    "Please turn the music down after ten at night.",
    "The bakery sells fresh rolls every morning at six.",
    "We are planning a trip to the mountains in July.",
    "The printer on the second floor is out of paper.",
    "He painted the fence blue to match the front door.",
    "Traffic was heavy on the bridge this morning.",
    "Let me know when the package arrives at the office.",
    "Can you book a table for two at eight tonight?",
    "I would like to change my delivery address please.",
    "What time does the pharmacy open on Sunday?",
    "The meeting has been moved to Thursday afternoon.",
)
