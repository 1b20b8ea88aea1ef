"""speechbridge: one interface for speech-to-text and text-to-speech, with any vendor behind it."""

from .audio import AudioFormat, PCMAudio
from .config import Config, load_config
from .errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    MissingDependency,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
    SpeechBridgeError,
    StreamClosed,
    TransportError,
    UnknownVoice,
    UnsupportedFeature,
)
from .events import (
    AudioChunk,
    Flushed,
    Ready,
    Reconnected,
    SpeechStarted,
    StreamEnded,
    STTEvent,
    Transcript,
    TTSEvent,
    TurnEnded,
    VADUpdate,
    Word,
    WordTiming,
)
from .fallback import AllProvidersFailed, FallbackSTT, FallbackTTS, ProviderSwitched
from .hookspecs import hookimpl
from .plugins import get_registry
from .stt import STTCapabilities, STTProvider, STTStream
from .sync import speak, transcribe_file
from .tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

__version__ = "0.1.0"

__all__ = [
    "AllProvidersFailed",
    "AudioChunk",
    "AudioFormat",
    "AudioFormatError",
    "AuthenticationError",
    "Config",
    "ConfigError",
    "FallbackSTT",
    "FallbackTTS",
    "Flushed",
    "InvalidRequest",
    "MissingDependency",
    "PCMAudio",
    "ProtocolError",
    "ProviderError",
    "ProviderSwitched",
    "QuotaExceeded",
    "RateLimitError",
    "Ready",
    "Reconnected",
    "STTCapabilities",
    "STTEvent",
    "STTProvider",
    "STTStream",
    "SpeechBridgeError",
    "SpeechStarted",
    "StreamClosed",
    "StreamEnded",
    "Synthesis",
    "TTSCapabilities",
    "TTSEvent",
    "TTSProvider",
    "TTSStream",
    "Transcript",
    "TransportError",
    "TurnEnded",
    "UnknownVoice",
    "UnsupportedFeature",
    "VADUpdate",
    "Voice",
    "Word",
    "WordTiming",
    "__version__",
    "get_registry",
    "hookimpl",
    "load_config",
    "speak",
    "transcribe_file",
]
