"""Studio: an offline desktop studio for generative models."""

__version__ = "0.1.0"
