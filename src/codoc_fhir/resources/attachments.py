"""Attachments of clinical documents: base64 decoding, charsets, and the plain text for NLP.

The bytes are kept exactly as sent; the text is decoded with the declared charset (UTF-8 by
default) and its HTML tags stripped with the standard library's parser.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.validation import require, text_value

CONTENT_TYPES = ("text/html", "text/plain")
INVALID_BASE64 = "Invalid Base64 encoding in attachment.data"


@dataclass(frozen=True)
class Content:
    """content[0].attachment, decoded."""

    content_type: str
    raw: bytes
    text: str  # the decoded document (HTML or plain text)
    plain_text: str  # what NLP reads: tags stripped, entities unescaped
    title: str | None


def decode_base64(data: Any) -> bytes:
    """The bytes of a base64Binary (whitespace allowed, as FHIR says); 400 when invalid."""
    if not isinstance(data, str):
        raise Invalid(INVALID_BASE64, expression=["content[0].attachment.data"])
    compact = "".join(data.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(INVALID_BASE64, expression=["content[0].attachment.data"]) from None


def media_type_and_charset(content_type: Any) -> tuple[str, str]:
    """('text/html', 'utf-8') from 'text/html; charset=UTF-8'; 400 for other media types."""
    field = "content[0].attachment.contentType"
    if not isinstance(content_type, str):
        raise Invalid(f"{field} must be a string", expression=[field])
    media, *parameters = (part.strip() for part in content_type.split(";"))
    if media.lower() not in CONTENT_TYPES:
        raise Invalid(
            f"Invalid {field} {content_type!r}. Must be one of: {', '.join(CONTENT_TYPES)}",
            expression=[field],
        )
    charset = "utf-8"
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        codecs.lookup(charset)
    except LookupError:
        raise Invalid(f"Unknown charset {charset!r} in {field}", expression=[field]) from None
    return media.lower(), charset


BLOCK_TAGS = (
    "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table td th title tr ul"
)


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML document; block elements end a line."""

    BLOCKS = frozenset(BLOCK_TAGS.split())
    SKIPPED = frozenset(("script", "style"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The plain text of an HTML document: tags dropped, entities unescaped, one line per
    block, blank lines dropped."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (line.strip() for line in "".join(extractor.parts).splitlines())
    return "\n".join(line for line in lines if line)


def parse_content(body: dict[str, Any]) -> Content:
    """content[0].attachment checked and decoded (one content entry only)."""
    contents = require(body, "content")
    if len(contents) > 1:
        raise Invalid("Only one content entry is supported", expression=["content"])
    attachment = require(body, "content", 0, "attachment")
    media, charset = media_type_and_charset(
        require(body, "content", 0, "attachment", "contentType")
    )
    raw = decode_base64(require(body, "content", 0, "attachment", "data"))
    try:
        text = raw.decode(charset)
    except UnicodeDecodeError:
        raise Invalid(
            f"attachment.data is not {charset} text (set the charset in contentType)",
            expression=["content[0].attachment.data"],
        ) from None
    if "\x00" in text:
        raise Invalid("A document must not contain NUL characters", expression=["content"])
    title = attachment.get("title")
    if title is not None:
        title = text_value(title, "content[0].attachment.title", 400)
    plain = html_to_text(text) if media == "text/html" else text
    content_type = text_value(attachment["contentType"], "content[0].attachment.contentType", 100)
    return Content(content_type, raw, text, plain, title)


def attachment(row: RowMapping) -> dict[str, Any]:
    """content[0].attachment as answered: the stored bytes, base64 again (a `size` or
    `hash` comes back only when the client sent one, with the kept elements: nothing is
    added to what was sent, CONTRACT section 9)."""
    raw = bytes(row["content_bytes"] or b"")
    answer: dict[str, Any] = {
        "contentType": row["content_type"],
        "data": base64.b64encode(raw).decode("ascii"),
    }
    if row["title"]:
        answer["title"] = row["title"]
    return answer
