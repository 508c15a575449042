"""`rag`: ingest, search, ask and manage documents from a terminal.

Heavy imports (torch, Chroma) happen inside the commands, so `rag --help` is instant. Errors a
user can fix are printed as one line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from rag.app.cli_common import settings_of, store_of
from rag.app.cli_docs import cmd_docs
from rag.app.terminal import Waiting, print_sources, result_line, stream_answer
from rag.errors import ConfigError, RagError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _precheck(paths, settings, report, json_out: bool) -> list:
    """The files worth opening the store for: missing, empty, unsupported or oversized ones are
    reported now, before the embedding model loads (a typo is an answer in a second, not ten)."""
    from ingest.formats import LoadError, check_file
    from ingest.pipeline import expand_paths
    from rag.schema import FileResult

    files = []
    for path in expand_paths(paths, exclude=[settings.chroma_dir]):
        try:
            check_file(path, settings.max_file_mb)
        except LoadError as exc:
            result = FileResult(str(path), "failed", error=str(exc))
            report.files.append(result)
            if not json_out:
                print(result_line(result), flush=True)
            continue
        files.append(path)
    return files


def cmd_ingest(args) -> int:
    from ingest.pipeline import IngestReport

    settings = settings_of(args)
    report = IngestReport()
    files = _precheck(args.paths, settings, report, args.json)
    if files:
        _ingest_files(args, files, report)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        t = report.totals
        where = f"into collection {settings.collection!r}"
        print(
            f"{len(report.files)} files: {t['added']} added, {t['updated']} updated, "
            f"{t['unchanged']} unchanged, {t['failed']} failed; {t['chunks']} chunks embedded {where}"
        )
    return 0 if report.ok else 1


def _ingest_files(args, files, report) -> None:
    from tqdm import tqdm

    from ingest.pipeline import Ingestor

    settings, store = store_of(args, create=True)
    ingestor = Ingestor(store, settings)
    bar = tqdm(total=len(files), unit="file", disable=not sys.stderr.isatty(), file=sys.stderr)
    for result in ingestor.ingest_files(files):  # in order, each as soon as it is stored
        bar.set_description(Path(result.path).name[:30])
        report.files.append(result)
        bar.update()
        if not args.json:
            tqdm.write(result_line(result), file=sys.stdout)
    bar.close()


def cmd_search(args) -> int:
    """The passages `rag ask` would give the model: the same retrieval (hybrid by default)."""
    from rag.retrieval import Retriever

    settings, store = store_of(args, create=False)
    retriever = Retriever(store, settings)
    k = args.k if args.k is not None else settings.k
    if args.query == "-":
        for line in sys.stdin:
            query = line.strip()
            hits = retriever.retrieve(query, k=k) if query else []
            print(json.dumps([h.to_json() for h in hits], ensure_ascii=False), flush=True)
        return 0
    hits = retriever.retrieve(args.query, k=k)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False))
        return 0
    if not hits:
        print(f"collection {store.name!r} has no documents yet: rag ingest PATH")
    for hit in hits:
        where = f"{hit.source}" + (f" p.{hit.page}" if hit.page else "")
        text = " ".join(hit.text.split())
        print(f"{hit.rank}. [{hit.score:.3f}] {where}  ({hit.chunk_id})")
        print(f"   {text[:300]}{'…' if len(text) > 300 else ''}")
    return 0


def _chain(args):
    from rag.answer import build

    return build(settings_of(args))


def cmd_ask(args) -> int:
    if args.json:
        chain = _chain(args)
        print(json.dumps(chain.ask(args.question, k=args.k).to_json(), ensure_ascii=False))
        return 0
    waiting = Waiting()
    waiting.show()  # loading the models is part of the wait
    try:
        chain = _chain(args)
    finally:
        waiting.clear()
    print_sources(stream_answer(chain, args.question, [], args.k, waiting))
    return 0


def cmd_chat(args) -> int:
    chain = _chain(args)
    history: list[tuple[str, str]] = []
    print("Ask about your documents. Follow-up questions work. Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("\nyou> ").strip()
        except EOFError:
            print()
            return 0
        if not question or question in {"/exit", "/quit"}:
            return 0
        print("bot> ", end="", flush=True)
        try:
            answer = stream_answer(chain, question, history, args.k)
        except RagError as exc:  # keep the conversation going after a backend hiccup
            print(f"\nerror: {exc}", file=sys.stderr)
            continue
        print_sources(answer)
        history.append((question, answer.answer))


def cmd_serve(args) -> int:
    from rag.app.net import check_port_free

    check_port_free(args.host, args.port)  # a busy --port fails before Gradio is even imported
    from rag.app.web import build_app, launch, parse_auth

    settings = settings_of(args)
    parse_auth(args.auth or settings.auth)  # a malformed --auth fails before the app is built
    if args.public:
        settings = settings.model_copy(update={"public": True})
    # Gradio's upload cache inside RAG_DATA_DIR, so the app writes nowhere else (unless set).
    os.environ.setdefault("GRADIO_TEMP_DIR", str((settings.data_dir / "gradio-cache").resolve()))
    launch(build_app(settings), host=args.host, port=args.port, share=args.share, auth=args.auth or "")
    return 0


def cmd_feedback(args) -> int:
    """Thumbs up/down given in the web app (DATA_DIR/feedback.jsonl): counts, or every entry as JSONL."""
    from rag.app.feedback import FeedbackLog

    log = FeedbackLog(settings_of(args).data_dir)
    if args.feedback_command == "export":
        out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
        n = 0
        try:
            for entry in log.entries():
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
                n += 1
        finally:
            if args.out:
                out.close()
        if args.out:
            print(f"{n} feedback entries written to {args.out}")
        return 0
    s = log.summary()
    print(f"{s['total']} answers rated: {s['up']} up, {s['down']} down ({s['path']})")
    return 0


def cmd_doctor(args) -> int:
    """Versions, models, data folders, and whether the LLM loads and answers (rag/app/doctor.py)."""
    from rag.app import doctor

    report = doctor.run(settings_of(args), probe=not args.no_probe)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        doctor.print_report(report)
    return 0 if report["ok"] else 1


EVAL_EPILOG = """\
datasets:
  SQuAD JSON (e.g. XQuAD's xquad.en.json; docs/evaluation.md): each article's contexts are one
    document to search; "is_impossible": true makes a question unanswerable.
  JSONL, one object per line: {"question": "...", "answers": ["..."], "answerable": true,
    "context": "..."}; "answerable" (default true) and "context" are optional. Each distinct
    context is one document; a file with no contexts needs --docs PATH (files or folders).

The documents are ingested into a throwaway collection in a temporary folder (your RAG_DATA_DIR
and RAG_CHROMA_URL are not touched), or into --data-dir DIR, kept and reused on the next run.
A question is found at rank r when a gold answer string appears in the r-th retrieved chunk.
Retrieval: recall@1, recall@k, MRR@k over the answerable questions. --answers: the full chain at
temperature 0; exact match and F1 over answerable questions that were answered, refusal rate,
false refusals (answerable refused), correct refusals (unanswerable refused).

report keys: dataset, format, questions {total, evaluated, answerable, unanswerable, skipped},
corpus {documents, extra_paths, chunks, ingest}, settings, retrieval {k, questions,
recall_at_1, recall_at_k, mrr, recall_by_k}, answers (null without --answers) {model,
questions, answerable, unanswerable, answered, exact_match, f1, contains, all_answerable,
refusal_rate, false_refusal_rate, correct_refusal_rate, seconds_per_question}, seconds,
per_question [{question, answers, answerable, rank, answer, refused, ...}], report, plot.
"""


def cmd_eval(args) -> int:
    from rag.app.evaluation import EvalOptions, evaluate, load_dataset, save_plot

    settings = settings_of(args)
    dataset = load_dataset(args.dataset)
    k = args.k if args.k is not None else settings.k
    options = EvalOptions(
        k=k, answers=args.answers, limit=args.limit, docs=list(args.docs or []),
        data_dir=args.data_dir, progress=sys.stderr.isatty(),
    )
    report = evaluate(dataset, settings, options, log=lambda line: print(line, file=sys.stderr, flush=True))
    report.report, report.plot = str(args.report), str(args.plot)
    retrieval = report.retrieval
    try:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        title = f"{args.dataset.name}: {retrieval.questions} questions, {report.mode} retrieval"
        save_plot(retrieval.recall_by_k, args.plot, title)
    except OSError as exc:
        raise ConfigError(f"cannot write the report or plot: {exc}") from None
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return 0
    print("\n".join(report.summary(args.dataset.name, k)))
    print(f"report {args.report}, plot {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_collection(p):
        p.add_argument("--collection", "-c", help="collection name (default: RAG_COLLECTION or 'default')")
        return p

    p = with_collection(sub.add_parser("ingest", help="add files and folders (recursive) to a collection"))
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=cmd_ingest)

    p = with_collection(sub.add_parser("search", help="retrieve passages as `ask` does (hybrid by default), no LLM"))
    p.add_argument("query", metavar="QUERY", help="the query, or - to read one query per line from stdin")
    p.add_argument("--k", type=_positive_int, help="passages to return (default: RAG_K)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_search)

    p = with_collection(sub.add_parser("ask", help="answer a question from the documents, with sources"))
    p.add_argument("question", metavar="QUESTION")
    p.add_argument("--k", type=_positive_int, help="passages to retrieve (default: RAG_K)")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")
    p.set_defaults(func=cmd_ask)

    p = with_collection(sub.add_parser("chat", help="a conversation in the terminal, with follow-ups"))
    p.add_argument("--k", type=_positive_int, help="passages to retrieve (default: RAG_K)")
    p.set_defaults(func=cmd_chat)

    p = with_collection(sub.add_parser("serve", help="run the chat app in the browser"))
    p.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    p.add_argument("--auth", metavar="USER:PASS", help="require this login (or RAG_AUTH)")
    p.add_argument("--public", action="store_true", help="hosted-demo mode: per-visitor private uploads (RAG_PUBLIC)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "eval", help="measure retrieval (and answer) quality on a dataset with known answers",
        epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", metavar="DATASET", type=Path, help="a SQuAD .json or a .jsonl file")
    p.add_argument("--k", type=_positive_int, help="passages retrieved per question (default: RAG_K)")
    p.add_argument("--answers", action="store_true", help="also answer each question with the LLM (slow: use --limit)")
    p.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate N questions, evenly spaced (default: all)")
    p.add_argument("--docs", type=Path, action="append", metavar="PATH", help="documents to ingest besides the dataset's contexts (repeatable)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="keep the ingested collection here and reuse it (default: temporary)")
    p.add_argument("--report", type=Path, default=Path("eval-report.json"), metavar="PATH", help="JSON report (default: eval-report.json)")
    p.add_argument("--plot", type=Path, default=Path("eval-recall.png"), metavar="PATH", help="recall@k plot (default: eval-recall.png)")
    p.add_argument("--json", action="store_true", help="also print the report to stdout")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("feedback", help="thumbs up/down given in the web app: counts, or export them")
    fsub = p.add_subparsers(dest="feedback_command")
    e = fsub.add_parser("export", help="every rated answer (question, answer, citations, settings) as JSONL")
    e.add_argument("--out", type=Path, metavar="PATH", help="write to this file (default: stdout)")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("doctor", help="check the install: versions, models, data folders, an LLM probe")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-probe", action="store_true", help="do not load the LLM")
    p.set_defaults(func=cmd_doctor)

    docs = sub.add_parser("docs", help="list, delete, clear or check stored documents")
    dsub = docs.add_subparsers(dest="docs_command", required=True)
    p = with_collection(dsub.add_parser("list", help="documents with chunk counts"))
    p.add_argument("--json", action="store_true")
    p = with_collection(dsub.add_parser("delete", help="remove every chunk of one document"))
    p.add_argument("source", metavar="SOURCE", help="the source as listed, its path, or its doc id")
    with_collection(dsub.add_parser("clear", help="remove every document from the collection"))
    p = with_collection(dsub.add_parser("check", help="is every stored chunk reachable by search? (--repair fixes)"))
    p.add_argument("--repair", action="store_true", help="re-add unreachable chunks, re-sync the keyword index")
    p.add_argument("--json", action="store_true")
    docs.set_defaults(func=cmd_docs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
