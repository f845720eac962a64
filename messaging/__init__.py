"""Messages to participants: rows before sends, channels, opt-out, the sweep, and the kinds registry."""
