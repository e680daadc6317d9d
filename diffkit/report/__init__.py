"""Rendering of the studies: Markdown tables (tables, pages), PNG plots (plots), the files and
the index (writer), and the check that committed reports match a fresh run (check)."""
