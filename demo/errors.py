"""How the demo refuses a request: `InputError`, with a message meant for the visitor.

`demo.ui` shows it as a gr.Error (one line in the page or the API client, no traceback in the log).
"""
from __future__ import annotations

import re


class InputError(ValueError):
    """A request the demo refuses; the message is shown to the visitor as is."""


class Stopped(Exception):
    """The visitor pressed Stop; the run ends at the next chunk of queries."""


def quote(value) -> str:
    """A file name or value for a message: quoted, at most 60 characters, no HTML-active characters."""
    return "'" + re.sub(r"[^\w .,:;+=()\[\]-]", "_", str(value))[:60] + "'"


def sentence(error: ValueError) -> str:
    """A package ValueError ("scale must be a number in [1, 16], got 40.0") as a sentence for the page."""
    text = str(error)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
