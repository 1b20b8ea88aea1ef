"""speechbridge's Cartesia backend: STT and TTS over REST and WebSocket, and a wire-compatible Cartesia server."""
