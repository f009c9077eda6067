import numpy as np

from vidfleet_detector.drawing import draw_tracks, track_colour


def test_tracks_are_drawn_without_any_font_file() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    draw_tracks(image, np.array([[20.0, 40.0, 80.0, 100.0, 3, 0.87, 1]]), {1: "square"})
    assert image[40:100, 20].any(), "box edge drawn"
    assert image[:40].any(), "label drawn above the box"
    assert not image[110:, 100:].any(), "nothing drawn far from the box"


def test_colours_differ_between_neighbouring_ids() -> None:
    colours = {track_colour(i) for i in range(1, 11)}
    assert len(colours) == 10
