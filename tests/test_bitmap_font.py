"""The PNG report's bitmap font: every printable character its own glyph, lines that fit."""

from __future__ import annotations

import string

import numpy as np

from vsearch.bitmap_font import GLYPH_HEIGHT, GLYPHS, draw_text, text_mask


def test_every_printable_character_has_a_glyph_of_its_own():
    printable = string.printable[:95]  # space to ~
    assert set(GLYPHS) == set(printable)
    drawn = {ch: GLYPHS[ch].tobytes() for ch in printable}
    assert len(set(drawn.values())) == len(printable)  # no two characters look the same
    assert all(GLYPHS[ch].any() for ch in printable if ch != " ")
    # Anything else is drawn as a question mark, one cell wide.
    assert np.array_equal(text_mask("é"), text_mask("?")) and text_mask("ab", scale=2).shape == (14, 24)


def test_text_is_wrapped_between_words_to_the_width():
    line = GLYPH_HEIGHT * 2 + 6
    one = draw_text("score 0.991", 400)
    assert one.shape == (line, 400, 3) and (one == 30).all(axis=2).any()
    # 12 pixels a character at scale 2: 8 fit in 102 pixels.
    wrapped = draw_text("clip.mp4 12.300-17.800 s", 102)
    assert wrapped.shape[0] == 3 * line
    assert np.array_equal(wrapped[:line], draw_text("clip.mp4", 102))
    assert np.array_equal(wrapped[line:2 * line], draw_text("12.300-1", 102))  # a word longer than a line is cut
