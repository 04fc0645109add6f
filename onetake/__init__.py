"""onetake: one capture in, every channel's deliverables out."""

__version__ = "0.1.0"
