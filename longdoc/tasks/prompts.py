"""Prompt templates: files in `prompts/` with declared variables, rendered with document text fenced.

A template file starts with `#` header lines, one of them `# variables: a, b`, then a line `---`,
then the body, where `{{name}}` marks a variable. A body that begins with a line `[system]` has a
system message, up to a line `[user]`; small models keep to rules stated there (such as "say so
when the passages do not answer") better than to the same words at the end of a long user message.
Rendering checks that exactly the declared variables are given, so a typo in a template or a
caller fails loudly instead of sending the model a prompt with a hole in it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from longdoc.model.protocol import Prompt
from longdoc.errors import LongdocError

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# The tags templates fence document text with. Text that contains one of them could close the
# fence early and pose as instructions, so its '<' becomes a look-alike before rendering.
_FENCE = re.compile(r"<(?=/?\s*(?:document|summaries|sources|source|previous|previous_translation|glossary|text|facts|topics)\b)", re.I)


class PromptError(LongdocError):
    """A prompt template is missing, malformed, or rendered with the wrong variables."""


@dataclass(frozen=True)
class PromptTemplate:
    """One task step's prompt: its body, declared variables and content hash (part of cache keys)."""

    name: str
    body: str  # the user message
    variables: frozenset[str]
    sha256: str
    system: str | None = None  # the system message, if the template has one

    def render(self, **values: object) -> Prompt:
        """The prompt with every variable filled in: a string, or system + user messages.

        Values are fenced against delimiter forgery."""
        given = set(values)
        if given != self.variables:
            missing, extra = sorted(self.variables - given), sorted(given - self.variables)
            raise PromptError(f"prompt {self.name}: missing variables {missing}, unexpected {extra}")
        user = self._fill(self.body, values)
        if self.system is None:
            return user
        return [{"role": "system", "content": self._fill(self.system, values)}, {"role": "user", "content": user}]

    @staticmethod
    def _fill(text: str, values: dict[str, object]) -> str:
        return _PLACEHOLDER.sub(lambda match: fence(str(values[match.group(1)])), text)


def prompt_text(prompt: Prompt) -> str:
    """All the text of a prompt, for counting its tokens."""
    return prompt if isinstance(prompt, str) else "\n\n".join(message["content"] for message in prompt)


def fence(text: str) -> str:
    """Text with anything that looks like one of the templates' delimiter tags defused."""
    return _FENCE.sub("‹", text)


def prompts_dir() -> Path:
    """Where the templates are: inside the installed wheel, or the repository's `prompts/`."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "prompts", package.parent / "prompts"):
        if candidate.is_dir():
            return candidate
    raise PromptError(f"prompt templates not found next to {package}; reinstall longdoc")


@cache
def load_prompt(name: str) -> PromptTemplate:
    """The template `prompts/<name>.txt`, parsed and checked."""
    path = prompts_dir() / f"{name}.txt"
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PromptError(f"cannot read prompt template {path}: {error.strerror or error}") from error
    return parse_prompt(name, raw)


def parse_prompt(name: str, raw: str) -> PromptTemplate:
    """A template from its file text; the declared variables must be exactly those the body uses."""
    header, separator, body = raw.partition("\n---\n")
    if not separator:
        raise PromptError(f"prompt {name}: no '---' line between header and body")
    declared = _declared_variables(name, header)
    used = set(_PLACEHOLDER.findall(body))
    if used != declared:
        raise PromptError(f"prompt {name}: declares {sorted(declared)} but uses {sorted(used)}")
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    system, user = _split_roles(name, body.strip("\n"))
    return PromptTemplate(name=name, body=user, variables=frozenset(declared), sha256=digest, system=system)


def _split_roles(name: str, body: str) -> tuple[str | None, str]:
    if not body.startswith("[system]\n"):
        return None, body
    system, separator, user = body.removeprefix("[system]\n").partition("\n[user]\n")
    if not separator:
        raise PromptError(f"prompt {name}: a [system] part needs a [user] part after it")
    return system.strip("\n"), user.strip("\n")


def _declared_variables(name: str, header: str) -> set[str]:
    for line in header.splitlines():
        key, _, value = line.lstrip("# ").partition(":")
        if key.strip() == "variables":
            return {item.strip() for item in value.split(",") if item.strip()}
    raise PromptError(f"prompt {name}: no '# variables:' line in the header")
