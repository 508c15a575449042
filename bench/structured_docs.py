"""Structured documents with questions, generated: an FAQ of several HTML pages, a PDF manual with an
outline and numbered question sections ("7.31 Why …?"), and a slide deck.

    python bench/structured_docs.py OUT_DIR        # writes OUT_DIR/{faq,manual,slides}/ and questions.json

Real documents are not like SQuAD paragraphs: their sections are short answers under a heading
that states the question, and a reader's question restates that heading ("What makes the pump hum
once it is switched off?") or asks about a fact in the body. Every section holds one unique code
(e.g. "KT-4821"); a question counts as found when a retrieved chunk holds its section's code.
Half the questions paraphrase the heading, half ask about a body fact; none copies the heading.

Everything is drawn from a fixed seed: the same files and questions on every run. The files are
written with the real libraries (reportlab, python-pptx) through tests/docgen.py where it has a
generator, so the loaders see what a user's files would give them.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

SEED = 13

# (component, [(symptom as a heading, symptom as a reader asks it)])
COMPONENTS = [
    "bilge pump", "anchor winch", "fog horn", "lamp rotator", "diesel generator", "radio mast",
    "solar charger", "water heater", "fuel filter", "battery bank", "gallery door", "signal mast",
]
# (as a heading, as a reader asks it, the same said of it)
SYMPTOMS = [
    ("hum after it is switched off", "keep making a humming noise once it has been shut down", "still hums when off"),
    ("stop after a few minutes", "cut out shortly after starting", "dies soon after I start it"),
    ("show a red warning light", "light up red as a warning", "has a red light on"),
    ("smell of burning", "give off a burnt smell", "smells burnt"),
    ("run slower in winter", "lose speed when it is cold outside", "gets sluggish in the cold"),
    ("trip the breaker", "keep tripping the circuit breaker", "keeps knocking out the breaker"),
    ("leak at the base", "drip underneath", "is dripping from below"),
    ("make a clicking sound", "click repeatedly", "keeps clicking"),
]
CAUSES = ["a worn bearing", "a loose terminal", "moisture in the housing", "a clogged intake", "a bent shaft",
          "old grease", "a cracked seal", "a failing capacitor", "salt crust on the contacts", "a slack belt"]
TOOLS = ["torque wrench", "contact cleaner", "feeler gauge", "multimeter", "grease gun", "heat gun", "wire brush"]
PEOPLE = ["Ingrid Solberg", "Tomas Rekdal", "Aino Virtanen", "Per Hagen", "Maren Lie", "Jonas Berg", "Sofie Dahl"]
DEPOTS = ["Bodø", "Tromsø", "Ålesund", "Narvik", "Molde", "Harstad"]
BODY_TEMPLATES = [
    "In most cases the cause is {cause}. Switch the unit off at the main panel and wait {minutes} minutes "
    "before opening the cover. Check it with the {tool}; readings outside {low} to {high} mean the part "
    "must be replaced. Order replacement kit {code} from the {depot} depot, where {person} handles requests.",
    "This is usually {cause}. Before anything else, log the time and the outside temperature in the keeper's "
    "book. Clean the area with the {tool} and run the unit for {minutes} minutes. If nothing changes, kit {code} "
    "holds the parts; {person} at {depot} ships it within {days} days.",
    "Keepers report this about {count} times a year, and {cause} is behind it nearly every time. "
    "Use the {tool} and compare the value with the plate on the housing ({low}–{high}). Spare set {code} "
    "is kept in the store room; when it runs out, call {person} in {depot}.",
]


def _code(rng: random.Random, used: set[str]) -> str:
    while True:
        code = f"{rng.choice('KPRSTV')}{rng.choice('TXQMZ')}-{rng.randint(1000, 9999)}"
        if code not in used:
            used.add(code)
            return code


def _sections(rng: random.Random, n: int, used: set[str]) -> list[dict]:
    """n distinct (component, symptom) sections with a body, a code and two questions."""
    pairs = [(c, s) for c in COMPONENTS for s in SYMPTOMS]
    rng.shuffle(pairs)
    out = []
    for component, (heading_symptom, asked_symptom, said_symptom) in pairs[:n]:
        facts = {
            "cause": rng.choice(CAUSES), "tool": rng.choice(TOOLS), "person": rng.choice(PEOPLE),
            "depot": rng.choice(DEPOTS), "minutes": rng.randint(2, 30), "days": rng.randint(2, 9),
            "count": rng.randint(2, 12), "low": rng.randint(10, 40), "code": _code(rng, used),
        }
        facts["high"] = facts["low"] + rng.randint(5, 30)
        body = rng.choice(BODY_TEMPLATES).format(**facts)
        out.append({
            "component": component,
            "heading": f"Why does the {component} {heading_symptom}?",
            "body": body,
            "code": facts["code"],
            "questions": [
                f"What should I do when the {component} starts to {asked_symptom}?",
                f"Our {component} {said_symptom}: what do I check it with, and who sends the spare parts?",
            ],
        })
    return out


def write_faq(root: Path, rng: random.Random, used: set[str]) -> list[dict]:
    """Five HTML pages, one topic each, every question an <h2> with its answer below."""
    import docgen

    sections = _sections(rng, 50, used)
    pages: dict[str, list[dict]] = {}
    for s in sections:
        pages.setdefault(COMPONENTS.index(s["component"]) % 5, []).append(s)
    questions = []
    for i, items in sorted(pages.items()):
        topic = f"part {i + 1}"
        body = "".join(f"<h2>{s['heading']}</h2><p>{s['body']}</p>" for s in items)
        html = (f"<html><head><title>FAQ: {topic}</title></head><body><nav>Home | FAQ | Contact</nav>"
                f"<main><h1>Frequently asked questions: {topic}</h1>{body}</main>"
                "<footer>Lighthouse service, all rights reserved</footer></body></html>")
        docgen.make_html(root / f"faq-{i + 1}.html", html)
        questions += [{"question": q, "answer": s["code"]} for s in items for q in s["questions"]]
    return questions


def write_manual(root: Path, rng: random.Random, used: set[str]) -> list[dict]:
    """A PDF manual: chapters and numbered question sections ("7.31 Why …?"), both in the
    outline; chapter titles in 16 pt bold, section titles in 11 pt bold, body in 11 pt."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    sections = _sections(rng, 56, used)
    chapters: dict[str, list[dict]] = {}
    for s in sections:
        chapters.setdefault(s["component"], []).append(s)
    root.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(root / "service-manual.pdf"), pagesize=A4)
    width, height = A4
    y = height - 72

    def line(text: str, font: str, size: int, gap: int) -> None:
        nonlocal y
        for part in simpleSplit(text, font, size, width - 144):
            if y < 90:
                c.showPage()
                y = height - 72
            c.setFont(font, size)
            c.drawString(72, y, part)
            y -= gap

    c.setFont("Helvetica-Bold", 20)
    c.drawString(72, y, "Lighthouse Service Manual")
    y -= 40
    questions = []
    for number, (component, items) in enumerate(sorted(chapters.items()), start=5):
        if y < 200:
            c.showPage()
            y = height - 72
        key = f"ch{number}"
        c.bookmarkPage(key, fit="XYZ", top=y + 20)
        c.addOutlineEntry(f"{number} The {component}", key, level=0)
        line(f"{number} The {component}", "Helvetica-Bold", 16, 26)
        line(f"This chapter answers the questions keepers ask most about the {component}.", "Helvetica", 11, 20)
        for i, s in enumerate(items, start=1):
            title = f"{number}.{i + 20} {s['heading']}"
            if y < 150:
                c.showPage()
                y = height - 72
            key = f"s{number}-{i}"
            c.bookmarkPage(key, fit="XYZ", top=y + 16)
            c.addOutlineEntry(title, key, level=1)
            line(title, "Helvetica-Bold", 11, 16)
            line(s["body"], "Helvetica", 11, 14)
            y -= 10
            questions += [{"question": q, "answer": s["code"]} for q in s["questions"]]
    c.showPage()
    c.save()
    return questions


def write_slides(root: Path, rng: random.Random, used: set[str]) -> list[dict]:
    """A deck: one slide per question section, the heading as its title, the body as its text."""
    import docgen

    sections = _sections(rng, 30, used)
    root.mkdir(parents=True, exist_ok=True)
    docgen.make_pptx(root / "keeper-training.pptx", [(s["heading"], s["body"]) for s in sections])
    return [{"question": q, "answer": s["code"]} for s in sections for q in s["questions"]]


WRITERS = {"faq": write_faq, "manual": write_manual, "slides": write_slides}


def generate(out: Path) -> dict[str, list[dict]]:
    """Write every set under out/NAME/ and out/questions.json; returns {set: questions}."""
    rng = random.Random(SEED)
    used: set[str] = set()
    sets = {name: write(out / name, rng, used) for name, write in WRITERS.items()}
    (out / "questions.json").write_text(json.dumps(sets, indent=1, ensure_ascii=False), encoding="utf-8")
    return sets


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.split("\n\n")[1])
    for name, qs in generate(Path(sys.argv[1])).items():
        print(f"{name}: {len(qs)} questions")
