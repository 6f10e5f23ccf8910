"""Errors longdoc raises, each carrying the exit code the CLI returns for it.

LongdocError                    1  anything else the library reports
├── InputError                     problems with what the user gave us
│   ├── InputNotFound           3  no such file
│   ├── InputIsDirectory        4  a directory where a document was expected
│   ├── InputUnreadable         5  permission denied or an I/O error while reading
│   ├── BinaryInput             6  binary data or a format we do not read (images, archives, ...)
│   ├── EmptyInput              7  nothing but whitespace
│   ├── EncryptedPdf            8  a PDF that the empty password does not open
│   ├── NoTextLayer             9  a PDF with pages but no extractable text (needs OCR)
│   ├── CorruptInput           10  a damaged PDF with no readable page, or a PDF that parses too slowly
│   └── DecodeError            11  text that the requested encoding cannot decode
├── ModelError                 12  embedding or language model could not be loaded or run
│   └── RemoteModelError       13  the model server rejected a request, or sent something unreadable
│       ├── ServerUnavailable  13  the model server was unreachable or busy, or timed out, on every attempt
│       └── PromptTooLong      17  the server rejects a prompt as longer than its context, even after re-planning
├── ConfigError                14  longdoc.toml is malformed or names an unknown setting
├── ModelChoiceError            2  the flags and settings name no usable model (a usage error)
├── SomeInputsFailed           15  a batch finished, but some of its inputs failed (each was reported)
└── OutputUnwritable           16  an output file or directory cannot be written

Typer's usage errors exit 2 and Ctrl-C exits 130; neither is a LongdocError.
"""

from __future__ import annotations


class LongdocError(Exception):
    """Base class: a one-line message for the user and the process exit code."""

    exit_code: int = 1


class InputError(LongdocError):
    """The input document cannot be used as given."""


class InputNotFound(InputError):
    """The path does not exist."""

    exit_code = 3


class InputIsDirectory(InputError):
    """The path is a directory."""

    exit_code = 4


class InputUnreadable(InputError):
    """The file exists but cannot be read."""

    exit_code = 5


class BinaryInput(InputError):
    """The bytes are not text, nor a format longdoc reads."""

    exit_code = 6


class EmptyInput(InputError):
    """The document has no text."""

    exit_code = 7


class EncryptedPdf(InputError):
    """The PDF is encrypted with a password we do not have."""

    exit_code = 8


class NoTextLayer(InputError):
    """The PDF has pages but no text layer."""

    exit_code = 9


class CorruptInput(InputError):
    """The document is damaged beyond reading."""

    exit_code = 10


class DecodeError(InputError):
    """The text cannot be decoded with the requested encoding."""

    exit_code = 11


class ModelError(LongdocError):
    """A model could not be loaded or run."""

    exit_code = 12


class RemoteModelError(ModelError):
    """The model server could not be reached, did not answer in time, or rejected a request."""

    exit_code = 13


class ConfigError(LongdocError):
    """The configuration file cannot be read, is not valid TOML, or holds an unknown or mistyped setting."""

    exit_code = 14


class ModelChoiceError(LongdocError):
    """The backend, server URL or model named cannot be used together; `option` names the flag to fix."""

    exit_code = 2  # a usage error, as Typer's own

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


class SomeInputsFailed(LongdocError):
    """A batch ran to its end, but at least one input failed and was skipped."""

    exit_code = 15


class OutputUnwritable(LongdocError):
    """An output file or directory cannot be created or written."""

    exit_code = 16


class ServerUnavailable(RemoteModelError):
    """Every attempt failed for a reason of the server's (unreachable, busy, no answer in time): the
    next input would fare no better, so a batch stops here."""


class PromptTooLong(RemoteModelError):
    """The server rejected a prompt as longer than its context window. `limit` is the window the
    server stated (its own tokens), `tokens` the prompt's size as it counted it; either may be None.
    The tasks re-plan against the smaller window the model learned from it, a few times at most."""

    exit_code = 17

    def __init__(self, message: str, limit: int | None = None, tokens: int | None = None) -> None:
        super().__init__(message)
        self.limit, self.tokens = limit, tokens
