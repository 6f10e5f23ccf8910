"""longdoc: summarize, question and translate documents far longer than a model's context."""

__version__ = "0.1.0"
