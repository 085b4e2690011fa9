"""Small HTML building blocks for self-contained report pages.

No template engine: :class:`string.Template` for the page skeleton and a few
helpers that escape every piece of text they are given. The stylesheet is inline
and no external resource is referenced, so pages open offline.
"""

from __future__ import annotations

import html as _html
from collections.abc import Iterable, Sequence
from string import Template

__all__ = ["CSS", "esc", "page", "section", "figure", "table", "note", "warning", "warning_list", "ok", "swatch", "definition_list", "toc"]

CSS = """
:root { --fg:#1d2433; --muted:#5b6475; --line:#dde1e8; --bg:#ffffff; --soft:#f5f7fa; --accent:#2f5d9a; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--soft); }
main { max-width:1180px; margin:0 auto; padding:24px 28px 60px; background:var(--bg);
       box-shadow:0 0 0 1px var(--line); min-height:100vh; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:20px; margin:36px 0 10px; padding-bottom:4px; border-bottom:2px solid var(--line); }
h3 { font-size:16px; margin:22px 0 8px; }
p.sub { color:var(--muted); margin:0 0 16px; }
a { color:var(--accent); }
nav.toc { background:var(--soft); border:1px solid var(--line); border-radius:6px; padding:8px 14px;
          margin:16px 0; font-size:14px; }
nav.toc a { margin-right:10px; white-space:nowrap; text-decoration:none; display:inline-block; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:4px 18px; margin:12px 0; }
dl.meta dt { color:var(--muted); }
dl.meta dd { margin:0; }
table { border-collapse:collapse; margin:8px 0 14px; font-size:14px; }
th, td { border-bottom:1px solid var(--line); padding:5px 12px; text-align:right; vertical-align:top; }
th { background:var(--soft); font-weight:600; }
th:first-child, td:first-child { text-align:left; }
td.text, th.text { text-align:left; }
td:not(.text), th:not(.text) { white-space:nowrap; }
table.wide { font-size:13px; }
table.wide th, table.wide td { padding:5px 8px; }
tr.summary td { font-weight:600; border-top:2px solid #b9c0cc; }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:6px;
          vertical-align:-1px; border:1px solid rgba(0,0,0,.25); }
figure { margin:14px 0 22px; }
figure img { max-width:100%; height:auto; display:block; border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:13px; margin-top:5px; }
.note { color:var(--muted); font-style:italic; margin:6px 0 12px; }
.warning ul { margin:4px 0 0; padding-left:22px; font-weight:400; }
.ok { background:#eaf6ee; border-left:4px solid #2e8b57; padding:8px 12px; margin:10px 0; }
.warning { background:#fff4e5; border-left:4px solid #e07b00; padding:8px 12px; margin:10px 0; font-weight:600; }
.gallery { display:flex; flex-wrap:wrap; gap:12px; }
.gallery figure { margin:0; flex:0 1 320px; }
.gallery img { width:100%; image-rendering:auto; }
footer { color:var(--muted); font-size:12px; margin-top:40px; border-top:1px solid var(--line); padding-top:8px; }
"""

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
$body
<footer>$footer</footer>
</main>
</body>
</html>
"""
)


def esc(text: object) -> str:
    """HTML-escape any value."""
    return _html.escape("" if text is None else str(text), quote=True)


def page(title: str, body: str, footer: str = "") -> str:
    """A complete HTML document; ``body`` and ``footer`` are HTML already."""
    return _PAGE.substitute(title=esc(title), css=CSS, body=body, footer=footer)


def section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{content}\n</section>\n'


def figure(data_uri: str, alt: str, caption: str = "", data_links: Sequence[tuple[str, str]] = (), cls: str = "") -> str:
    """An embedded image with a caption and links to the data behind it."""
    links = ""
    if data_links:
        links = " Data: " + ", ".join(f'<a href="{esc(href)}">{esc(name)}</a>' for name, href in data_links) + "."
    klass = f' class="{esc(cls)}"' if cls else ""
    return (
        f'<figure{klass}><img src="{data_uri}" alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}{links}</figcaption></figure>\n"
    )


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    text_cols: Sequence[int] = (0,),
    row_classes: Sequence[str] | None = None,
    raw_cols: Sequence[int] = (),
    cls: str = "",
) -> str:
    """A table; cells are escaped except in ``raw_cols`` (HTML already)."""
    head = "".join(f'<th class="text">{esc(h)}</th>' if i in text_cols else f"<th>{esc(h)}</th>" for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        rcls = f' class="{esc(row_classes[r])}"' if row_classes and row_classes[r] else ""
        cells = []
        for i, v in enumerate(row):
            content = str(v) if i in raw_cols else esc(v)
            cells.append(f'<td class="text">{content}</td>' if i in text_cols else f"<td>{content}</td>")
        body.append(f"<tr{rcls}>{''.join(cells)}</tr>")
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<table{klass}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>\n'


def warning(text: str) -> str:
    return f'<div class="warning" role="alert">⚠ {esc(text)}</div>\n'


def warning_list(text: str, items: Iterable[str]) -> str:
    """A warning box: a sentence and a bulleted list (all escaped)."""
    lis = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f'<div class="warning" role="alert">⚠ {esc(text)}<ul>{lis}</ul></div>\n'


def ok(text: str) -> str:
    return f'<div class="ok">{esc(text)}</div>\n'


def swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{esc(color)}"></span>'


def definition_list(items: Sequence[tuple[str, str]], raw: bool = False) -> str:
    """``<dl>`` of (term, value); values are escaped unless ``raw``."""
    parts = [f"<dt>{esc(k)}</dt><dd>{v if raw else esc(v)}</dd>" for k, v in items]
    return '<dl class="meta">' + "".join(parts) + "</dl>\n"


def toc(entries: Sequence[tuple[str, str]]) -> str:
    links = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in entries)
    return f'<nav class="toc">{links}</nav>\n'
