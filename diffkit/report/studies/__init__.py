"""One module per study: how its numbers become a page, an index line and plots.

`diffkit.report.studies.NAME` renders `diffkit.experiments.NAME`'s result and defines:

- `TITLE`: the page's H1;
- `sections(result) -> (lines, timing_lines)`: the Markdown lines of the body and of the
  timing section (the only part that varies between runs);
- `headline(result) -> str`: one line for the index;
- optionally `plots(result, out) -> list[str]`: draws NAME.png / NAME_*.png into `out` and
  returns their file names (called only when matplotlib is available);
- optionally `KEY_PLOT`: the PNG the index shows inline (default: the first by name);
- optionally `index_plot(result, out) -> str | None`: a plot drawn for the index only.
"""
