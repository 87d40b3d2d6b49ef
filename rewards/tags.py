"""Reading a tagged span out of model text, in linear time.

`tagged_answer(text)` is what the first `<answer>...</answer>` holds, stripped; None when
there is no closed pair. It is found with `str.partition`, never a regex: `<answer>(.*?)</answer>`
rescans to the end of the text from every unclosed `<answer>` (16 KB of them: ~0.4 s in one
step), and `<answer>\\s*(.*?)\\s*</answer>` backtracks cubically on an unclosed tag followed
by whitespace (minutes). Env authors read answers with it too (`toolgym.tagged_answer`).
"""

from __future__ import annotations


def tagged_answer(text: str, tag: str = "answer") -> str | None:
    """The stripped text inside the first `<tag>...</tag>` (the first `</tag>` after the
    first `<tag>`), or None when that tag is never closed."""
    rest = text.partition(f"<{tag}>")[2]
    inner, closed, _ = rest.partition(f"</{tag}>")
    return inner.strip() if closed else None  # no opening: nothing after it to close
