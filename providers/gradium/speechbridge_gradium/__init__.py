"""speechbridge's Gradium backend: the reference backend, and a wire-compatible Gradium server."""
