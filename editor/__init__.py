"""The Gradio editor. Only UI here: every model operation goes through engine's public API."""
