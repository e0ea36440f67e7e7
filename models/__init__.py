"""Generative and neural models built on the probkit core (imported as probkit.models)."""
