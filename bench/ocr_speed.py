"""OCR seconds per page and words read correctly, on pages of real prose.

    nice python bench/ocr_speed.py --pages 3 [--dataset ../shared/eval/xquad-en/xquad.en.json]

Pages: real paragraphs (the dataset's contexts, or this repository's README and docs/ without one) typeset
as A4 PDF pages at 11 pt with reportlab, so the true text of every page is known. Each page is
rendered with PDFium at a scan resolution and read by RapidOCR, for several engine settings
(text-detection size, RapidOCR's per-line orientation classifier on or off); a "photo" variant rotates the page 1.5 degrees and adds noise. Word recall: the share of
the page's words (lower-cased, punctuation dropped) found in the OCR text, counted as multisets.
Then the whole path the loader takes: a scanned PDF (page images only) through load_file.
Prints one row per setting: seconds per page, wall and CPU (medians; on a shared machine the CPU
seconds are the steadier number), and word recall (mean). An "upside" row reads the pages turned
180 degrees with the shipped setting.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

WORD = re.compile(r"[a-z0-9]+")


def page_texts(dataset: Path | None, pages: int, chars_per_page: int = 2600) -> list[str]:
    if dataset and dataset.is_file():
        data = json.loads(dataset.read_text(encoding="utf-8"))
        paragraphs = [p["context"] for article in data["data"] for p in article["paragraphs"]]
    else:
        repo = Path(__file__).resolve().parent.parent
        texts = [f.read_text(encoding="utf-8") for f in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]]
        paragraphs = [p for text in texts for p in text.split("\n\n") if len(p) > 200 and "|" not in p]
    random.Random(0).shuffle(paragraphs)
    out, current = [], ""
    for paragraph in paragraphs:
        current = f"{current}\n{paragraph}".strip()
        if len(current) >= chars_per_page:
            out.append(current[:chars_per_page].rsplit(" ", 1)[0])
            current = ""
            if len(out) == pages:
                break
    return out


def typeset(texts: list[str]) -> tuple[bytes, list[str]]:
    """An 11 pt A4 PDF, one text per page; returns it and the text each page really holds."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    buf, truth = io.BytesIO(), []
    c = canvas.Canvas(buf, pagesize=A4)
    for text in texts:
        c.setFont("Helvetica", 11)
        y, shown = A4[1] - 60, []
        for paragraph in text.split("\n"):
            for line in simpleSplit(paragraph, "Helvetica", 11, A4[0] - 120):
                if y < 60:
                    break
                c.drawString(60, y, line)
                shown.append(line)
                y -= 14
            y -= 6
        truth.append(" ".join(shown))
        c.showPage()
    c.save()
    return buf.getvalue(), truth


def recall(truth: str, found: str) -> float:
    want, got = Counter(WORD.findall(truth.lower())), Counter(WORD.findall(found.lower()))
    return sum((want & got).values()) / max(1, sum(want.values()))


def photo(image, seed: int):
    from PIL import Image

    image = image.convert("L").rotate(1.5, resample=Image.BICUBIC, fillcolor=230)
    rng = random.Random(seed)
    px = image.load()
    w, h = image.size
    for _ in range(w * h // 40):
        x, y = rng.randrange(w), rng.randrange(h)
        px[x, y] = max(0, min(255, px[x, y] + rng.randint(-60, 60)))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--dataset", type=Path, default=Path("../shared/eval/xquad-en/xquad.en.json"))
    parser.add_argument("--dpi", type=int, nargs="+", default=[200])
    args = parser.parse_args()

    from ingest import ocr, stats
    from ingest.formats import load_file

    configs = {  # name -> (text detection longest side or None for RapidOCR's default, line classifier)
        "RapidOCR defaults": (None, True),
        f"det {ocr.DET_MAX_SIDE} + line cls": (ocr.DET_MAX_SIDE, True),
        f"det {ocr.DET_MAX_SIDE}, no cls *": (ocr.DET_MAX_SIDE, False),
        "det default, no cls": (None, False),
    }
    texts = page_texts(args.dataset, args.pages)
    source = args.dataset.name if args.dataset.is_file() else "README.md + docs"
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "typeset.pdf"
        data, truth = typeset(texts)
        pdf.write_bytes(data)
        print(f"# {len(truth)} A4 pages of {source} prose at 11 pt, {sum(len(t.split()) for t in truth)} words; "
              "* = as shipped (ingest/ocr.py)")
        t0 = time.perf_counter()
        engines = {name: ocr.make_engine(det, cls) for name, (det, cls) in configs.items()}
        warm = next(ocr.render_pdf_pages(pdf, [0]))[1]
        for engine in engines.values():
            engine(warm.convert("RGB"))  # model load and first run, not counted
        print(f"# {len(engines)} engines loaded and warmed up: {time.perf_counter() - t0:.1f} s")
        print(f"{'page':<7} {'dpi':>4} {'setting':<24} {'wall s/page':>11} {'CPU s/page':>10} {'word recall':>12}")
        for dpi in args.dpi:
            images = [image for _, image in ocr.render_pdf_pages(pdf, list(range(len(truth))), dpi=dpi)]
            variants = {"clean": images, "photo": [photo(im, i) for i, im in enumerate(images)],
                        "upside": [im.rotate(180) for im in images]}
            for kind, pages in variants.items():
                for name, engine in engines.items():
                    if kind == "upside" and not name.endswith("*"):
                        continue
                    seconds, cpu, recalls = [], [], []
                    for image, want in zip(pages, truth):
                        t, c = time.perf_counter(), time.process_time()
                        found = ocr.read_image(image, engine)
                        seconds.append(time.perf_counter() - t)
                        cpu.append(time.process_time() - c)
                        recalls.append(recall(want, found))
                    print(f"{kind:<7} {dpi:>4} {name:<24} {statistics.median(seconds):>11.2f} "
                          f"{statistics.median(cpu):>10.2f} {statistics.mean(recalls):>12.3f}", flush=True)

        # the loader's whole path: a scan (page images, no text layer) -> render -> OCR -> sections
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.utils import ImageReader
        from reportlab.pdfgen import canvas

        scan = Path(tmp) / "scan.pdf"
        c = canvas.Canvas(str(scan), pagesize=A4)
        for _, image in ocr.render_pdf_pages(pdf, list(range(len(truth))), dpi=200):
            c.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
            c.showPage()
        c.save()
        t, c = time.perf_counter(), time.process_time()
        with stats.collecting() as found:
            sections = load_file(scan)
        elapsed, cpu_s = time.perf_counter() - t, time.process_time() - c
        text = " ".join(s.page_content for s in sections)
        print(f"load_file(scanned PDF of {found.pages} pages, as shipped: render {ocr.RENDER_DPI} dpi, OCR): "
              f"{elapsed / found.pages:.2f} s/page wall, {cpu_s / found.pages:.2f} s/page CPU, "
              f"{found.ocr_pages} pages OCR'd, word recall {recall(' '.join(truth), text):.3f}")


if __name__ == "__main__":
    main()
