"""Studies of how a network behaves rather than what it predicts: gradient flow through time."""
