"""speechbridge's ElevenLabs backend."""
