"""The leaderboard as pages: Markdown, and one self-contained HTML page (no external assets).

Contract
--------
`render_markdown(board)` is the ranked table (rank, `=N` for a tie with the row above,
score with its interval, completed / failed, reward, pass^k, cost, p95 latency, success@1
per slice, links), then the refused models with their reasons.

`render_html(board)` returns a page with:

* `table#board`: one row per ranked model (`tr[data-model]`), the columns of
  `leaderboard.md` (a slice column shows the point, its interval in the tooltip; the
  aggregate slice is the score column). Every cell carries `data-value` (the number
  behind it, empty when absent; text for names), and a click on any header sorts the rows
  by that column (inline JavaScript; a second click reverses; absent values sort last).
* `svg.slice-chart` per slice (aggregate first): a horizontal bar per model at its success@1
  (`rect.bar[data-model][data-point]`) with a whisker over its confidence interval
  (`line.whisker[data-lower][data-upper]`).
* the refused models with their reasons, the ranking method, and the board's JSON in
  `script#board-data` (the same object as `leaderboard.json`).
Both are pure functions of a `Leaderboard`; every HTML text is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from evals.metrics import AGGREGATE
from evals.report import _md_table, fmt, fmt_estimate
from evals.stats import Estimate

if TYPE_CHECKING:
    from evals.leaderboard import Leaderboard, Row

LABEL_W, BAR_W, ROW_H = 150, 320, 22

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f5f7; cursor: pointer; user-select: none; white-space: normal;
     max-width: 8em; vertical-align: bottom; }
th[data-order="asc"]::after { content: " \\25B2"; }
th[data-order="desc"]::after { content: " \\25BC"; }
td.text { text-align: left; }
tr.tied td:first-child { color: #8a6d00; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.bar { fill: #4c8bf5; } .whisker { stroke: #1b1f24; stroke-width: 1.5; }
.method { max-width: 60em; color: #444; }
"""

SCRIPT = """
(function () {
  const table = document.getElementById('board');
  const headers = table.querySelectorAll('thead th');
  headers.forEach((th, col) => th.addEventListener('click', () => {
    const asc = th.dataset.order !== 'asc';
    headers.forEach(h => delete h.dataset.order);
    th.dataset.order = asc ? 'asc' : 'desc';
    const numeric = th.dataset.type === 'num';
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      if (numeric) {
        if (x === '' && y === '') return 0;
        if (x === '') return 1;
        if (y === '') return -1;
        return asc ? Number(x) - Number(y) : Number(y) - Number(x);
      }
      return asc ? x.localeCompare(y) : y.localeCompare(x);
    });
    rows.forEach(row => body.appendChild(row));
  }));
})();
"""


def _cell(text: str, value: float | str | None, *, numeric: bool = True) -> str:
    data = "" if value is None else (repr(float(value)) if numeric else str(value))
    cls = "" if numeric else ' class="text"'
    return f'<td{cls} data-value="{html.escape(data)}">{text}</td>'


def _estimate_cell(est: Estimate | None) -> str:
    return _cell(html.escape(fmt_estimate(est)), est.point if est else None)


def _point_cell(est: Estimate | None) -> str:
    """A slice's point only (the interval in its tooltip and in the chart)."""
    if est is None:
        return _cell("—", None)
    tip = html.escape(f"{fmt_estimate(est)}, n={est.n}")
    return f'<td data-value="{est.point!r}" title="{tip}">{html.escape(fmt(est.point))}</td>'


def _links(paths: list[str], label: str) -> str:
    links = " ".join(f'<a href="{html.escape(p)}">{label}</a>' for p in paths)
    return f'<td class="text" data-value="{html.escape(" ".join(paths))}">{links}</td>'


def _row(row: Row, slices: list[str]) -> str:
    rank = f"={row.rank}" if row.tied_with_above else str(row.rank)
    status = row.status
    cells = [
        _cell(rank, row.rank),
        _cell(html.escape(row.model), row.model, numeric=False),
        _estimate_cell(row.score),
        _cell(f"{status.completed} / {status.failed}", status.completed),
        _cell(
            fmt(row.reward.point) if row.reward else "—", row.reward.point if row.reward else None
        ),
        _estimate_cell(row.pass_k),
        _estimate_cell(row.cost_per_1k_tokens_usd),
        _cell(
            fmt(row.latency_p95_ms.point) if row.latency_p95_ms else "—",
            row.latency_p95_ms.point if row.latency_p95_ms else None,
        ),
        *(_point_cell(row.slices.get(name)) for name in slices if name != AGGREGATE),
        _links(row.manifests, "manifest"),
        _links(row.reports, "report"),
    ]
    tied = ' class="tied"' if row.tied_with_above else ""
    return f'<tr data-model="{html.escape(row.model)}"{tied}>' + "".join(cells) + "</tr>"


def _chart(board: Leaderboard, slice_name: str) -> str:
    """One slice: a bar per model at success@1, a whisker over its interval."""
    rows = [row for row in board.rows if slice_name in row.slices]
    height = ROW_H * len(rows) + 24
    width = LABEL_W + BAR_W + 60
    parts = [
        f'<svg class="slice-chart" data-slice="{html.escape(slice_name)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{LABEL_W}" y1="0" x2="{LABEL_W}" y2="{height - 20}" stroke="#888"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        x = LABEL_W + tick * BAR_W
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">'
            f"{tick:g}</text>"
        )
    for i, row in enumerate(rows):
        est = row.slices[slice_name]
        y = i * ROW_H + 4
        mid = y + (ROW_H - 8) / 2
        lo, hi = (LABEL_W + v * BAR_W for v in (est.lower_ci, est.upper_ci))
        name = html.escape(row.model)
        parts += [
            f'<text x="{LABEL_W - 6}" y="{mid + 4:.1f}" font-size="11" text-anchor="end">'
            f"{name}</text>",
            f'<rect class="bar" data-model="{name}" data-point="{est.point!r}" x="{LABEL_W}" '
            f'y="{y}" width="{est.point * BAR_W:.1f}" height="{ROW_H - 8}"><title>{name}: '
            f"{html.escape(fmt_estimate(est))} (n={est.n})</title></rect>",
            f'<line class="whisker" data-model="{name}" data-lower="{est.lower_ci!r}" '
            f'data-upper="{est.upper_ci!r}" x1="{lo:.1f}" y1="{mid:.1f}" x2="{hi:.1f}" '
            f'y2="{mid:.1f}"/>',
            *(
                f'<line class="whisker-end" x1="{x:.1f}" y1="{mid - 4:.1f}" x2="{x:.1f}" '
                f'y2="{mid + 4:.1f}" stroke="#1b1f24"/>'
                for x in (lo, hi)
            ),
            f'<text x="{LABEL_W + BAR_W + 6}" y="{mid + 4:.1f}" font-size="11">'
            f"{fmt(est.point)}</text>",
        ]
    parts.append("</svg>")
    return f"<figure><figcaption>{html.escape(slice_name)}</figcaption>{''.join(parts)}</figure>"


def _charted(board: Leaderboard) -> list[str]:
    """Slices to chart: the aggregate first, then the rest in the board's order."""
    return sorted(board.slices, key=lambda name: name != AGGREGATE)


def render_html(board: Leaderboard) -> str:
    """The whole page (see the module contract)."""
    k = board.k
    headers = [
        ("Rank", "num"),
        ("Model", "text"),
        (f"success@1 [{board.confidence:.0%} CI]", "num"),
        ("Completed / failed", "num"),
        ("Reward", "num"),
        (f"pass^{k}", "num"),
        ("Cost / 1k tokens (USD)", "num"),
        ("p95 latency (ms)", "num"),
        *((name, "num") for name in board.slices if name != AGGREGATE),
        ("Manifest", "text"),
        ("Report", "text"),
    ]
    head = "".join(  # <wbr>: long slice names may wrap after an underscore
        f'<th data-type="{kind}">{html.escape(text).replace("_", "_<wbr>")}</th>'
        for text, kind in headers
    )
    body = "".join(_row(row, board.slices) for row in board.rows)
    envs = ", ".join(f"{e.env} ({e.split})" for e in board.entries)
    refused = "".join(
        f"<li><code>{html.escape(r.model)}</code> ({html.escape(r.spec)}): "
        f"{html.escape(r.reason)}</li>"
        for r in board.refused
    )
    data = board.model_dump_json().replace("</", "<\\/")
    title = f"Leaderboard: suite {board.suite}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="method">Suite: {html.escape(envs)}; {board.episodes} episodes per model. Ranked by
{html.escape(board.aggregate)}. <b>=N</b>: tied with the row above (paired McNemar test on
twin episodes, p &ge; {board.alpha:g}). Click a column header to sort.</p>
<table id="board"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>success@1 per slice ({board.confidence:.0%} CI)</h2>
<div class="charts">{"".join(_chart(board, name) for name in _charted(board))}</div>
{f"<h2>Refused (not ranked)</h2><ul id='refused'>{refused}</ul>" if refused else ""}
<script id="board-data" type="application/json">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def render_markdown(board: Leaderboard) -> str:
    """The leaderboard as Markdown: the ranked table, then refusals and the method."""
    k = board.k
    header = ["rank", "model", f"success@1 [{board.confidence:.0%} CI]", "completed / failed"]
    header += ["reward", f"pass^{k}", "cost / 1k tok", "p95 latency ms", *board.slices]
    header += ["manifest", "report"]
    body = []
    for row in board.rows:
        cells = [
            f"={row.rank}" if row.tied_with_above else str(row.rank),
            row.model,
            fmt_estimate(row.score),
            f"{row.status.completed} / {row.status.failed}",
            fmt(row.reward.point) if row.reward else "—",
            fmt_estimate(row.pass_k),
            fmt_estimate(row.cost_per_1k_tokens_usd),
            fmt(row.latency_p95_ms.point) if row.latency_p95_ms else "—",
            *(fmt(row.slices[s].point) if s in row.slices else "—" for s in board.slices),
            " ".join(f"[manifest]({m})" for m in row.manifests),
            " ".join(f"[report]({r})" for r in row.reports),
        ]
        body.append(cells)
    envs = ", ".join(f"{e.env} ({e.split})" for e in board.entries)
    lines = [
        f"# Leaderboard: suite `{board.suite}`",
        "",
        f"Suite: {envs}; {board.episodes} episodes per model. Ranked by {board.aggregate}. "
        f"`=N`: tied with the row above (paired McNemar test on twin episodes, "
        f"p >= {board.alpha:g}).",
        "",
        *_md_table(header, body),
    ]
    if board.refused:
        lines += ["", "## Refused (not ranked)", ""]
        lines += [f"- `{r.model}` (`{r.spec}`): {r.reason}" for r in board.refused]
    return "\n".join(lines) + "\n"
