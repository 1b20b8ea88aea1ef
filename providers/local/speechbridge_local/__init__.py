"""speechbridge's embedded offline backend: pocketsphinx STT, hibari TTS, webrtcvad VAD, and the Smart Turn
end-of-turn model (:mod:`.smart_turn`).

Installed, it is found through its ``speechbridge`` entry point as the ``local`` provider; nothing registers on import.
"""

from __future__ import annotations

from .settings import LocalSTTSettings, LocalTTSSettings
from .stt import LocalSTT, LocalSTTStream
from .tts import LocalTTS, LocalTTSStream

__all__ = ["LocalSTT", "LocalSTTSettings", "LocalSTTStream", "LocalTTS", "LocalTTSSettings", "LocalTTSStream"]
