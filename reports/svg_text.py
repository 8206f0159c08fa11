"""SVG text in the customer report laid out one label at a time, not one letter at a time.

WeasyPrint 70 draws an SVG <text>/<tspan> by laying out every letter on its own (one Pango
layout per letter, so that per-letter x/y/dx/dy/rotate work) after laying out the whole string
once to measure it. The report's trend chart has about 50 labels ("Mar" / "26", "75 %", bar
values, legend): that per-letter work was about 0.05 CPU-s per report, an eighth of a typical
report (issue 18). A label without per-letter positioning (one x, one y, no dx, dy, rotate,
letter-spacing or textLength: every label plotly.js writes for our chart) is drawn here as the
one layout WeasyPrint already made of the whole string, at the position of its first letter.
The glyphs are the same; only the pair kerning of the font now applies inside a label, as in
the HTML text around it. Anything else goes to WeasyPrint's own `text`. `prepare` also hands
the text anchors (middle, end) of such labels to `text`, which shifts a label by the width it
has measured, instead of WeasyPrint drawing each anchored label into a PDF group of its own.

Only while `enabled()` is active in this thread (the customer report's renders); other PDFs
(the Gold billing report) are drawn by WeasyPrint's code. Replaces `text` in WeasyPrint's SVG
tag table and module (the module compares tags against it for text-anchor handling), WeasyPrint
70.x as locked; `test_svg_labels_are_laid_out_once` notices an upgrade that changes them.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from math import inf

import weasyprint.svg as wsvg
from weasyprint.svg import text as _svg_text_module  # noqa: F401 - the submodule is loaded
from weasyprint.svg.bounding_box import extend_bounding_box
from weasyprint.svg.text import Style, TextBox
from weasyprint.svg.text import text as weasyprint_text
from weasyprint.svg.utils import normalize, size

_local = threading.local()
#: `prepare` moves `text-anchor` of the labels it can place itself to this attribute
ANCHOR = "sla-text-anchor"
_PER_LETTER = ("rotate", "letter-spacing", "textLength", "lengthAdjust")
_POSITIONS = ("x", "y", "dx", "dy")
_SVG_NS = "http://www.w3.org/2000/svg"


@contextmanager
def enabled():
    """Lay out simple SVG labels whole while this thread renders inside the block."""
    before = getattr(_local, "on", False)
    _local.on = True
    try:
        yield
    finally:
        _local.on = before


def _single(node, name: str) -> bool:
    value = node.attrib.get(name)
    return value is None or len(normalize(value).strip().split(" ")) == 1


def is_simple(node) -> bool:
    """A label positioned as a whole: at most one x, y, dx and dy (which WeasyPrint applies to
    the first letter only), nothing per letter."""
    return (bool(node.text) and not any(name in node.attrib for name in _PER_LETTER)
            and all(_single(node, name) for name in _POSITIONS))


def text(svg, node, font_size):
    """WeasyPrint's SVG `text`, with one layout per simple label (see the module doc)."""
    anchored = ANCHOR in node.attrib  # only `prepare` writes it, on simple labels
    if not (anchored or getattr(_local, "on", False)) or not is_simple(node):
        return weasyprint_text(svg, node, font_size)
    from weasyprint.css.properties import INITIAL_VALUES
    from weasyprint.draw.text import draw_emojis, draw_first_line
    from weasyprint.matrix import Matrix
    from weasyprint.text.line_break import split_first_line

    # the style exactly as weasyprint.svg.text.text builds it
    style = Style()
    style.update(INITIAL_VALUES)
    style.font_config = svg.font_config
    style['font_family'] = [
        font.strip('"\'') for font in node.get('font-family', 'sans-serif').split(',')]
    style['font_style'] = node.get('font-style', 'normal')
    style['font_weight'] = node.get('font-weight', 400)
    style['font_size'] = font_size
    if node.get('direction') in ('ltr', 'rtl'):
        style['direction'] = node.get('direction')
    if style['font_weight'] == 'normal':
        style['font_weight'] = 400
    elif style['font_weight'] == 'bold':
        style['font_weight'] = 700
    else:
        try:
            style['font_weight'] = int(style['font_weight'])
        except ValueError:
            style['font_weight'] = 400

    layout, _, _, width, height, baseline = split_first_line(
        node.text, style, svg.context, inf, 0)

    def first(name, reference):
        if name not in node.attrib:
            return None
        return size(normalize(node.attrib[name]).strip(), font_size, reference)

    x, y = first('x', svg.inner_width), first('y', svg.inner_height)
    dx, dy = first('dx', svg.inner_width), first('dy', svg.inner_height)

    ascent, descent = font_size * .8, font_size * .2
    y_align = 0
    display_anchor = node.get('display-anchor')
    alignment_baseline = node.get('dominant-baseline', node.get('alignment-baseline'))
    if display_anchor == 'middle':
        y_align = -height / 2
    elif display_anchor == 'top':
        pass
    elif display_anchor == 'bottom':
        y_align = -height
    elif alignment_baseline in ('central', 'middle'):
        y_align = (ascent + descent) / 2 - descent
    elif alignment_baseline in (
            'text-before-edge', 'before_edge', 'top', 'hanging', 'text-top'):
        y_align = ascent
    elif alignment_baseline in (
            'text-after-edge', 'after_edge', 'bottom', 'text-bottom'):
        y_align = -descent

    # the first letter's position, as in WeasyPrint's letter loop (which tests `if x:`)
    if x:
        svg.cursor_d_position[0] = 0
    if y:
        svg.cursor_d_position[1] = 0
    svg.cursor_d_position[0] += dx or 0
    svg.cursor_d_position[1] += dy or 0
    x = svg.cursor_position[0] if x is None else x
    y = svg.cursor_position[1] if y is None else y
    svg.cursor_position = x + width, y
    x_position = x + svg.cursor_d_position[0]
    y_position = y + svg.cursor_d_position[1] + y_align
    if anchored:  # what WeasyPrint does with a group per label, see `prepare`
        x_position -= {"middle": width / 2, "end": width}.get(node.attrib[ANCHOR], 0)
    points = ((x_position, y_position - baseline),
              (x_position + width, y_position - baseline + height))
    node.text_bounding_box = extend_bounding_box(node.text_bounding_box, points)

    svg.stream.push_state()
    fill, stroke = svg.set_graphical_state(node, font_size)
    svg.stream.begin_text()
    layout.reactivate(style)
    svg.fill_stroke(fill, stroke, text=True)
    text_box = TextBox(layout, style)
    text_box.baseline = baseline
    emojis = draw_first_line(svg.stream, text_box, 'none', 'none',
                             Matrix(a=1, d=-1, e=x_position, f=y_position))
    svg.stream.end_text()
    svg.stream.pop_state()
    draw_emojis(svg.stream, style, x, y, emojis)


def _simple_element(el: ET.Element) -> bool:
    return not any(name in el.attrib for name in _PER_LETTER) and all(
        len(el.get(name, "").split()) <= 1 for name in _POSITIONS)


def prepare(svg: str) -> str:
    """The SVG with the text anchors of its labels resolved by `text` instead of WeasyPrint.

    WeasyPrint draws every label with text-anchor middle or end into its own PDF group (a form
    XObject) to measure it and shift it by its width: about 90 groups per trend chart. For a
    <text> whose own text and tspans are simple labels, each tspan with its own x and no text
    between the tspans (every label plotly.js writes for our chart; WeasyPrint anchors each of
    them on its own), `text-anchor` becomes `ANCHOR`, which `text` applies by shifting the label
    by the width it has just measured: same place, no group. Call only if `install()` is True.
    """
    root = ET.fromstring(svg)
    changed = False
    for el in root.iter(f"{{{_SVG_NS}}}text"):
        anchor = el.get("text-anchor")
        children = list(el)
        if (anchor not in ("middle", "end") or "direction" in el.attrib
                or "x" not in el.attrib or not _simple_element(el)
                or (children and (el.text or "").strip())
                or any(c.tag != f"{{{_SVG_NS}}}tspan" or len(c) or (c.tail or "").strip()
                       or "x" not in c.attrib or "text-anchor" in c.attrib
                       or "direction" in c.attrib or not _simple_element(c)
                       for c in children)):
            continue
        del el.attrib["text-anchor"]
        el.set(ANCHOR, anchor)
        changed = True
    return ET.tostring(root, encoding="unicode") if changed else svg


def install() -> bool:
    """Put `text` in WeasyPrint's SVG tag table (idempotent); False if the table is not as
    expected (then WeasyPrint's own code stays in place)."""
    tags = wsvg.TAGS
    if tags.get("text") is text and wsvg.text is text:
        return True
    if not (tags.get("text") is weasyprint_text and tags.get("tspan") is weasyprint_text
            and wsvg.text is weasyprint_text):
        return False
    tags["text"] = tags["tspan"] = text
    wsvg.text = text  # draw_node compares TAGS.get(tag) against the module's `text`
    return True
