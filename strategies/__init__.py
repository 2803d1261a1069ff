"""Built-in continual-learning strategies, one module each."""
