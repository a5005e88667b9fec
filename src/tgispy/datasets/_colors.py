"""``Colors``: DSPy 2.4's toy dataset of 137 color names (originally from matplotlib)."""

from __future__ import annotations

import random
from typing import Any

from tgispy.datasets._dataset import Dataset

__all__ = ["Colors", "all_colors"]

#: the color names, in DSPy 2.4.17's order
all_colors: list[str] = [
    "alice blue",
    "dodger blue",
    "light sky blue",
    "deep sky blue",
    "sky blue",
    "steel blue",
    "light steel blue",
    "medium blue",
    "navy blue",
    "blue",
    "royal blue",
    "cadet blue",
    "cornflower blue",
    "medium slate blue",
    "slate blue",
    "dark slate blue",
    "powder blue",
    "turquoise",
    "dark turquoise",
    "medium turquoise",
    "pale turquoise",
    "light sea green",
    "medium sea green",
    "sea green",
    "forest green",
    "green yellow",
    "lime green",
    "dark green",
    "green",
    "lime",
    "chartreuse",
    "lawn green",
    "yellow green",
    "olive green",
    "dark olive green",
    "medium spring green",
    "spring green",
    "medium aquamarine",
    "aquamarine",
    "aqua",
    "cyan",
    "dark cyan",
    "teal",
    "medium orchid",
    "dark orchid",
    "orchid",
    "blue violet",
    "violet",
    "dark violet",
    "plum",
    "thistle",
    "magenta",
    "fuchsia",
    "dark magenta",
    "medium purple",
    "purple",
    "rebecca purple",
    "dark red",
    "fire brick",
    "indian red",
    "light coral",
    "dark salmon",
    "light salmon",
    "salmon",
    "red",
    "crimson",
    "tomato",
    "coral",
    "orange red",
    "dark orange",
    "orange",
    "yellow",
    "gold",
    "light goldenrod yellow",
    "pale goldenrod",
    "goldenrod",
    "dark goldenrod",
    "beige",
    "moccasin",
    "blanched almond",
    "navajo white",
    "antique white",
    "bisque",
    "burlywood",
    "dark khaki",
    "khaki",
    "tan",
    "wheat",
    "snow",
    "floral white",
    "old lace",
    "ivory",
    "linen",
    "seashell",
    "honeydew",
    "mint cream",
    "azure",
    "lavender",
    "ghost white",
    "white smoke",
    "gainsboro",
    "light gray",
    "silver",
    "dark gray",
    "gray",
    "dim gray",
    "slate gray",
    "light slate gray",
    "dark slate gray",
    "black",
    "medium violet red",
    "pale violet red",
    "deep pink",
    "hot pink",
    "light pink",
    "pink",
    "peach puff",
    "rosy brown",
    "saddle brown",
    "sandy brown",
    "chocolate",
    "peru",
    "sienna",
    "brown",
    "maroon",
    "white",
    "misty rose",
    "lavender blush",
    "papaya whip",
    "lemon chiffon",
    "light yellow",
    "corn silk",
    "pale green",
    "light green",
    "olive drab",
    "olive",
    "dark sea green",
]


class Colors(Dataset):
    """Color names split 60/40 into train and dev after sorting by suffix (``"... blue"`` together).

    Examples are ``{"color": name}``; there is no test split.

    Args:
        sort_by_suffix: sort names by their reversed spelling before splitting, so that similar
            colors ("sky blue", "steel blue") do not straddle train and dev.
        *args: passed to :class:`Dataset`.
        **kwargs: passed to :class:`Dataset`.

    Example:
        >>> colors = Colors()
        >>> len(colors.train), len(colors.dev)
        (82, 55)
    """

    def __init__(self, sort_by_suffix: bool = True, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sort_by_suffix = sort_by_suffix
        colors = self.sorted_by_suffix(all_colors)
        # 60% for training keeps similar colors from being repeated between train and dev.
        train_size = int(len(colors) * 0.6)
        self._train = [{"color": color} for color in colors[:train_size]]
        self._dev = [{"color": color} for color in colors[train_size:]]
        random.Random(0).shuffle(self._train)
        random.Random(0).shuffle(self._dev)

    def sorted_by_suffix(self, colors: list[Any]) -> list[Any]:
        """``colors`` sorted by reversed name (strings or ``{"color": ...}`` dicts)."""
        if not self.sort_by_suffix:
            return colors
        if isinstance(colors[0], str):
            return sorted(colors, key=lambda x: x[::-1])
        return sorted(colors, key=lambda x: x["color"][::-1])
