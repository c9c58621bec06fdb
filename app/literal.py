"""Text that came from a person or a file (names, column names, data values, file names, error
messages quoting them), shown as typed wherever Streamlit reads Markdown: st.markdown, st.caption,
st.title, alerts, toasts, st.table cells, widget labels, radio options, tab and expander labels.

Escaping Markdown is not enough: Streamlit's renderer (remark-gfm) turns ``http://…``, ``www.…`` and
``name@host.tld`` *in plain text* into links after the escapes are read, so ``\\[x\\]\\(http://evil\\)``
still shows a live link. :func:`md` also puts a WORD JOINER (U+2060, invisible, no line break)
where the link finder would start, so nothing a user typed becomes a link, an image or HTML.
Selectbox and multiselect options and st.dataframe cells are plain text and need none of this.
Plotly draws its own subset of HTML in trace names and titles (``<a href>``, ``<b>``, ``<br>``):
:func:`plotly_text` shows such a string as typed.
"""

from __future__ import annotations

import html
import re

__all__ = ["md", "plotly_text", "WORD_JOINER"]

WORD_JOINER = "\u2060"
#: Every ASCII punctuation character Markdown, Streamlit's directives (``:red[…]``, ``:material/x:``)
#: or LaTeX (``$…$``) may read; CommonMark lets a backslash escape each of them.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&^\"'])")
#: Where remark-gfm's literal autolinks start (its own patterns: ``https?://``, ``www.``, an e-mail's ``@``).
_AUTOLINK = re.compile(r"(?i)(?<=http)(?=://)|(?<=https)(?=://)|(?<=www)(?=\.)|(?<=[\w.+-])(?=@[\w-]+\.\w)")


def md(text: object) -> str:
    """``text`` as a Markdown string that shows it literally: no formatting, link, image, HTML,
    colour directive, icon or formula, whatever it holds."""
    return _SPECIAL.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, str(text)))


def plotly_text(text: object) -> str:
    """``text`` for a Plotly trace name or title: its tags shown, not drawn (Plotly reads the entities)."""
    return html.escape(str(text), quote=False)
