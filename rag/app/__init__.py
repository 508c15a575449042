"""The faces of the library: the `rag` command line, the Gradio web app, the workspace the web app
drives, and `rag eval`. This package (and nothing in the core) imports `ingest/`.

cli.py        `rag ingest|search|ask|chat|docs|eval|serve` (cli_docs.py, terminal.py)
web/          the Gradio page: layout, named handlers, renderers, server
workspace.py  what the web app does, without Gradio: collections, uploads, visitors, answers
evaluation/   `rag eval`: datasets, scoring, running, report, plotting
"""
