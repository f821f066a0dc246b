"""Make Great Expectations' Data Docs safe to open on a node with no way out.

GX pages link Bootstrap, jQuery, Vega and Font Awesome from CDNs and a logo from a public bucket.
On a node every such request is a leak (it tells a third party that a check ran, and when) and a
failure (nodes are often offline). This removes every external reference and inlines a small
stylesheet so the pages stay readable without them.
"""

from __future__ import annotations

import re
from html import escape as html_escape
from pathlib import Path

_EXTERNAL = r"""(?:https?:)?//"""
_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']" + _EXTERNAL + r"[^>]*>\s*</script>", re.I | re.S)
_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']" + _EXTERNAL + r"[^>]*/?>", re.I | re.S)
_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']" + _EXTERNAL + r"[^>]*/?>", re.I | re.S)
_FORM = re.compile(r"<form\b[^>]*\baction\s*=\s*[\"']" + _EXTERNAL + r".*?</form>", re.I | re.S)
_HREF = re.compile(r"\bhref\s*=\s*([\"'])" + _EXTERNAL + r"[^\"']*\1", re.I)
_SRC = re.compile(r"\bsrc\s*=\s*([\"'])" + _EXTERNAL + r"[^\"']*\1", re.I)
_CSS_URL = re.compile(r"url\(\s*[\"']?" + _EXTERNAL + r"[^)]*\)", re.I)
_CSS_IMPORT = re.compile(r"@import\s+[^;]+;", re.I)
_NEWSLETTER = re.compile(r"<footer>(?:(?!</footer>).)*newsletter.*?</footer>", re.I | re.S)

_STYLE = """<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1d2330;line-height:1.4}
table{border-collapse:collapse;margin:0.5rem 0;width:100%}
td,th{border:1px solid #d7dbe3;padding:0.3rem 0.5rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}.text-danger{color:#b3261e}.text-success{color:#1e7b34}
.card{border:1px solid #d7dbe3;border-radius:4px;margin:0.8rem 0;padding:0.6rem}
.hide,.d-none,.modal{display:none}nav,.navbar{margin-bottom:1rem}a{color:#0b57d0}
.fas{font-style:normal}.fa-check-circle::before{content:"\\2714"}.fa-times::before{content:"\\2716"}
.fa-exclamation-triangle::before{content:"\\26A0"}
.tillit-verdict{border:2px solid #1d2330;border-radius:4px;padding:0.6rem 0.8rem;margin:0 0 1rem}
.tillit-verdict.fail{border-color:#b3261e}.tillit-verdict.warn{border-color:#a86400}.tillit-verdict.pass{border-color:#1e7b34}
</style>"""


def sanitize_html(html: str) -> str:
    for pattern in (_SCRIPT_SRC, _LINK, _IMG, _FORM, _NEWSLETTER):
        html = pattern.sub("", html)
    html = _HREF.sub('href="#"', html)
    html = _SRC.sub('src=""', html)
    html = _CSS_URL.sub("none", html)
    html = _CSS_IMPORT.sub("", html)
    return html.replace("</head>", _STYLE + "</head>", 1) if "</head>" in html else html


def sanitize_data_docs(root: Path) -> None:
    """Rewrite every HTML, CSS and JS file under ``root`` in place."""
    for path in root.rglob("*"):
        if path.suffix.lower() in (".html", ".htm"):
            path.write_text(sanitize_html(path.read_text(encoding="utf-8")), encoding="utf-8")
        elif path.suffix.lower() in (".css", ".js"):
            text = path.read_text(encoding="utf-8")
            text = _CSS_IMPORT.sub("", _CSS_URL.sub("none", text))
            path.write_text(text, encoding="utf-8")


def add_verdict_banner(root: Path, verdict: str, blocking_failed: list[str], warnings: list[str]) -> None:
    """Put Tillit's verdict on top of each validation page.

    GX counts every unmet expectation as a failure; Tillit blocks computation only on checks marked
    "blocks computation". The banner says which, with check names only.
    """
    lines = {
        "fail": f"{len(blocking_failed)} blocking check(s) failed: {', '.join(blocking_failed) or 'see the JSON report'}. "
                "The node will not compute on this extract.",
        "warn": f"No blocking check failed; {len(warnings)} warning-only check(s) did not hold: {', '.join(warnings)}. "
                "Computation may proceed.",
        "pass": "Every check holds.",
    }
    banner = (f'<div class="tillit-verdict {verdict}"><strong>Tillit verdict: {verdict.upper()}</strong> — '
              f"{html_escape(lines[verdict])} Structure, type and identity-code checks are in the JSON report. "
              "GX marks warning-only checks as unsuccessful too; each check's note says whether it blocks.</div>")
    for page in (root / "validations").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        page.write_text(re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, text, count=1), encoding="utf-8")
