"""The page: chat with its sources; documents, collection and settings tabs beside it (below on a
phone). Only lays out components and wires them to rag.app.web.handlers.Handlers."""

from __future__ import annotations

import gradio as gr

from ingest.formats import LOADERS
from rag.app import policy
from rag.app.sources_view import render_panel
from rag.app.web.handlers import Handlers
from rag.app.web.renderers import backend_status, doc_headers
from rag.settings import Settings


def layout(settings: Settings, on: Handlers) -> gr.Blocks:
    """The page: chat with its sources; documents, collection and settings tabs beside it (below on a phone)."""
    public = settings.public
    # Gradio's own cache (uploads not yet handed to us, files it serves at /gradio_api/file=) is
    # emptied of anything older than the visitor TTL, checked every few minutes.
    ttl_s = int(settings.session_ttl_minutes * 60)
    with gr.Blocks(title="groundwork-rag: ask your documents", delete_cache=(max(60, min(ttl_s, 600)), ttl_s)) as demo:
        history = gr.State([])
        turns = gr.State([])  # one dict per answer: question, answer, citations, settings, passages
        collection = gr.State(settings.collection)
        doc_sources = gr.State([])  # the stored source behind each documents-table row
        pending_delete = gr.State(None)
        gr.Markdown(
            "## Ask your documents\nAdd files under **Documents** and ask about them. Every answer lists the "
            "passages it found, cited ones first; if your documents do not hold the answer, it says so."
        )
        with gr.Row():
            with gr.Column(scale=3, min_width=340):
                chatbot = gr.Chatbot(label="Chat", height=460, elem_id="chat", placeholder="Loading your documents…")
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question about your documents…",
                        show_label=False,
                        scale=5,
                        min_width=180,
                        elem_id="question",
                    )
                    ask_button = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="ask")
                    stop_button = gr.Button("Stop", variant="stop", scale=1, min_width=70, elem_id="stop")
                with gr.Row():
                    new_button = gr.Button("New chat", size="sm", elem_id="new-chat")
                    export_md = gr.Button("Export Markdown", size="sm", elem_id="export-md")
                    export_json = gr.Button("Export JSON", size="sm", elem_id="export-json")
                export_file = gr.File(label="Exported chat", visible=False, elem_id="export-file")
                with gr.Group(visible=False, elem_id="page-view") as page_box:
                    page_image = gr.Image(label="Original page", type="pil", interactive=False, height=560, elem_id="page-image")
                    close_page = gr.Button("Close page", size="sm", elem_id="close-page")
                gr.Markdown("### Sources")
                sources = gr.HTML(render_panel([]), elem_id="sources")
            with gr.Column(scale=2, min_width=300):
                with gr.Tab("Documents"):
                    files = gr.File(
                        file_count="multiple",
                        file_types=sorted(LOADERS),
                        label=f"Add documents (up to {settings.max_upload_files} files, "
                        f"{settings.max_file_mb:g} MB each)",
                        elem_id="upload",
                    )
                    upload_status = gr.Markdown(elem_id="upload-status")
                    docs_table = gr.Dataframe(
                        headers=doc_headers(public),
                        datatype=["str", "number", *["str"] * (len(doc_headers(public)) - 2)],
                        interactive=False,
                        wrap=True,
                        elem_id="documents",
                    )
                    with gr.Group(visible=False, elem_id="confirm-box") as confirm_box:
                        confirm_text = gr.Markdown(elem_id="confirm-text")
                        with gr.Row():
                            confirm_button = gr.Button("Delete", variant="stop", elem_id="confirm-delete")
                            cancel_button = gr.Button("Cancel", elem_id="cancel-delete")
                    doc_choice = gr.Dropdown(label="Delete a document", choices=[], visible=False)  # for the /delete API
                    delete_button = gr.Button("Delete", visible=False)
                with gr.Tab("Collection"):
                    collection_box = gr.Dropdown(
                        choices=[settings.collection],
                        value=settings.collection,
                        allow_custom_value=True,
                        label="Collection to chat with (type a new name to create one)",
                        interactive=not public,
                    )
                    use_button = gr.Button("Use this collection", interactive=not public)
                    if public:
                        gr.Markdown("Public demo: your uploads go to a private collection of your session, deleted after "
                                    f"{settings.session_ttl_minutes:g} idle minutes.")
                with gr.Tab("Settings"):
                    k = gr.Slider(1, 12, value=settings.k, step=1, label="Passages retrieved (k)")
                    hybrid = gr.Checkbox(value=settings.hybrid, label="Keyword fusion (BM25 + embeddings)")
                    backend = gr.Radio(policy.allowed_backends(settings), value=settings.llm, label="LLM backend",
                                       interactive=len(policy.allowed_backends(settings)) > 1)
                    model = gr.Textbox(
                        value=settings.local_model if settings.llm == "local" else settings.openai_model,
                        label="Model (local: gemma3-270m, smollm2 or a GGUF path; openai: model name)",
                        interactive=not public,
                    )
                    temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.05, label="Temperature")
                    gr.Markdown(backend_status(settings))
        with gr.Row(elem_id="hidden-controls"):
            open_ref = gr.Textbox(elem_id="open-ref", show_label=False)
            open_go = gr.Button("open", elem_id="open-go")

        chat_inputs = [question, chatbot, history, turns, collection, k, hybrid, backend, model, temperature]
        chat_outputs = [chatbot, history, question, sources, turns]
        gate = dict(fn=on.gate, inputs=None, outputs=None, concurrency_limit=None, trigger_mode="multiple",
                    api_visibility="private")
        answer = dict(fn=on.respond, inputs=chat_inputs, outputs=chat_outputs, api_visibility="private")
        submitted = question.submit(**gate).success(**answer)
        clicked = ask_button.click(**gate).success(**answer)
        picked = chatbot.example_select(on.pick_example, None, question, api_visibility="private")
        from_example = picked.then(on.gate, None, None, concurrency_limit=None, api_visibility="private").success(**answer)
        stop_button.click(on.stop, [chatbot], [chatbot], cancels=[submitted, clicked, from_example],
                          api_visibility="private")
        new_button.click(on.new_chat, [collection],
                         [chatbot, history, turns, sources, question, page_box, chatbot],
                         cancels=[submitted, clicked, from_example], api_visibility="private")
        chatbot.like(on.feedback, [chatbot, turns], None, api_visibility="private")
        export_md.click(on.export_md, [turns], [export_file], api_visibility="private")
        export_json.click(on.export_json, [turns], [export_file], api_visibility="private")
        open_go.click(on.open_page, [open_ref, turns, collection], [page_box, page_image], api_visibility="private")
        close_page.click(lambda: gr.update(visible=False), None, [page_box], api_visibility="private")

        after_docs = dict(fn=on.after_documents_change, inputs=[collection], outputs=[doc_sources, chatbot],
                          api_visibility="private")
        files.upload(on.upload, [files, collection], [upload_status, docs_table, doc_choice, files],
                     api_name="upload").then(**after_docs)
        delete_button.click(on.delete, [doc_choice, collection], [docs_table, doc_choice], api_name="delete").then(**after_docs)
        docs_table.select(on.ask_delete, [doc_sources], [confirm_box, confirm_text, pending_delete],
                          api_visibility="private")
        confirm_button.click(on.confirm_delete, [pending_delete, collection],
                             [confirm_box, pending_delete, docs_table, doc_choice, doc_sources, chatbot],
                             api_visibility="private")
        cancel_button.click(lambda: (gr.update(visible=False), None), None, [confirm_box, pending_delete],
                            api_visibility="private")
        # the model box follows the backend: never a local model name sent as the OpenAI model
        backend.change(lambda b: settings.local_model if b == "local" else settings.openai_model,
                       backend, model, api_visibility="private")
        use_button.click(
            on.use_collection,
            [collection_box],
            [collection, chatbot, history, sources, docs_table, doc_choice, collection_box],
            api_visibility="private",
        ).then(lambda: ([], render_panel([])), None, [turns, sources], api_visibility="private").then(**after_docs)
        demo.load(on.refresh, [collection], [docs_table, doc_choice, collection_box],
                  api_visibility="private").then(**after_docs)
        gr.api(on.ask, api_name="ask")
        gr.api(on.documents, api_name="documents")
    return demo
