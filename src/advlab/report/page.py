"""The building blocks shared by advlab's HTML pages (the evaluation report, the poisoning
report): the inline stylesheet and small section, figure and key-value table helpers. Every
page is self-contained: inline CSS, inline SVG, no scripts."""

from __future__ import annotations

from html import escape

CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f5f7fa;--ok:#15803d;--bad:#b91c1c;
--badbg:#fef2f2;--badline:#fca5a5;--warn:#b45309;--warnbg:#fffbeb}*{box-sizing:border-box}body{
margin:0;background:var(--bg);color:var(--fg);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}main{
max-width:1100px;margin:0 auto;padding:28px 20px 56px}header.top h1{font-size:1.65rem;
margin:0 0 2px;letter-spacing:-.01em}header.top .sub{font-size:1.05rem;color:#374151}.meta{
color:var(--muted);font-size:.875rem;margin-top:4px}nav.toc{margin:14px 0 0;font-size:.875rem;
display:flex;flex-wrap:wrap;gap:4px 14px}nav.toc a{color:#1d4ed8;text-decoration:none}
nav.toc a:hover{text-decoration:underline}.cards{display:grid;
grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin:18px 0 4px}.card{
background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 16px}.card .label{
color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em}.card .value{
font-size:1.85rem;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.25}.card .note{
color:var(--muted);font-size:.82rem}.card.bad{background:var(--badbg);border-color:var(--badline)}
.card.bad .value{color:var(--bad)}.card.good .value{color:var(--ok)}.banner{border-radius:8px;
padding:10px 14px;margin:14px 0;font-weight:500}.banner.bad{background:var(--badbg);
border:1px solid var(--badline);color:var(--bad)}.banner.warn{background:var(--warnbg);
border:1px solid #fcd34d;color:var(--warn)}.banner a{color:inherit}section{background:#fff;
border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:16px 0}h2{
font-size:1.2rem;margin:0 0 4px}h3{font-size:1rem;margin:0 0 8px}p.caption,p.empty{
color:var(--muted);font-size:.875rem;margin:2px 0 12px}.scroll{overflow-x:auto}table{
border-collapse:collapse;width:100%;font-size:.875rem}th,td{padding:6px 10px;
border-bottom:1px solid var(--line);text-align:left;vertical-align:top}thead th{font-weight:600;
color:#374151;background:#f9fafb;border-bottom:2px solid var(--line);white-space:nowrap}.num{
text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}tr.clean td{
background:#f8fafc}tr.group th{background:#eef2ff;color:#3730a3;font-weight:600;font-size:.8rem;
letter-spacing:.03em}tr.worst td{font-weight:650;background:#f1f5f9;
border-bottom:2px solid #cbd5e1}.tag{display:inline-block;font-size:.72rem;font-weight:600;
padding:0 6px;border-radius:9px;background:#e0e7ff;color:#3730a3;margin-left:6px;
vertical-align:1px}.tag.error{background:#fee2e2;color:var(--bad)}.tag.warning{background:#fef3c7;
color:var(--warn)}.muted{color:var(--muted);font-weight:400}.small{font-size:.8rem}
#headline-table td:first-child{min-width:210px}li.check.pass .tag{background:#f3f4f6;
color:#4b5563}figure{margin:0}figure svg{display:block;max-width:100%;height:auto;margin:0 auto}
ul.checks{list-style:none;padding:0;margin:0}li.check{display:grid;grid-template-columns:26px 1fr;
gap:0 10px;padding:9px 12px;border:1px solid var(--line);border-radius:8px;margin-bottom:8px}
li.check .mark{font-size:1.15rem;font-weight:700;line-height:1.35}li.check .name{font-weight:600;
font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.85rem}
li.check .evidence,li.check .meaning{font-size:.875rem}li.check .meaning{color:#4b5563}
li.check.pass .mark{color:var(--ok)}li.check.fail{background:var(--badbg);
border-color:var(--badline);border-left:6px solid var(--bad)}li.check.fail .mark{color:var(--bad)}
li.check.fail .meaning{color:var(--bad);font-weight:600}.grid2{display:grid;
grid-template-columns:1fr 1fr;gap:20px}@media (max-width:820px){.grid2{grid-template-columns:1fr}}
table.kv th{width:34%;font-weight:500;color:var(--muted);background:none}code{
font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.82rem}
details summary{cursor:pointer;color:#1d4ed8;margin:6px 0}pre{background:#0f172a;color:#e2e8f0;
padding:14px;border-radius:8px;overflow:auto;font-size:.8rem;line-height:1.45;max-height:560px}
footer{color:var(--muted);font-size:.8rem;text-align:center;margin-top:24px}
"""


def section(sid: str, title: str, body: str, caption: str = "") -> str:
    """A titled ``<section>``; ``body`` and ``caption`` are HTML, ``title`` is escaped."""
    cap = f'<p class="caption">{caption}</p>' if caption else ""
    return f'<section id="{sid}">\n<h2>{escape(title)}</h2>{cap}\n{body}\n</section>'


def figure(svg: str | None, empty: str) -> str:
    """An inline SVG figure, or the ``empty`` message when there is none."""
    return f"<figure>{svg}</figure>" if svg else f'<p class="empty">{escape(empty)}</p>'


def kv(rows: list[tuple[str, str]]) -> str:
    """A two-column table of escaped keys and HTML values."""
    return '<table class="kv"><tbody>' + "".join(
        f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</tbody></table>"
