"""Reading a tagged span out of model text, in linear time.

`tagged_answer(text)` is what the first `<answer>...</answer>` holds, stripped; None when
there is no closed pair. It is found with `str.find`, never a regex: `<answer>(.*?)</answer>`
rescans to the end of the text from every unclosed `<answer>` (16 KB of them: ~0.4 s in one
step), and `<answer>\\s*(.*?)\\s*</answer>` backtracks cubically on an unclosed tag followed
by whitespace (minutes). Env authors read answers with it too (`toolgym.tagged_answer`).
"""

from __future__ import annotations


def tagged_answer(text: str, tag: str = "answer") -> str | None:
    """The stripped text inside the first `<tag>...</tag>` (the first `</tag>` after the
    first `<tag>`), or None when that tag is never closed."""
    opening, closing = f"<{tag}>", f"</{tag}>"
    start = text.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = text.find(closing, start)
    return text[start:end].strip() if end >= 0 else None
