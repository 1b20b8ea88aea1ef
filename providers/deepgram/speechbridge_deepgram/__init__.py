"""speechbridge backend and wire-compatible front for the Deepgram speech API."""
