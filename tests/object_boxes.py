"""Hand-made object boxes on 84x84 frames, shared by the scoring tests (not a test module)."""

SIZE = 84


def box(x0, y0, x1, y1):
    """Pixel box (x from x0 to x1, y from y0 to y1) -> normalised (ymin, xmin, ymax, xmax)."""
    return [y0 / SIZE, x0 / SIZE, y1 / SIZE, x1 / SIZE]


# A small 2x2 object spanning x in [40, 42], y in [30, 32]: centre (41, 31).
SMALL = box(40, 30, 42, 32)
