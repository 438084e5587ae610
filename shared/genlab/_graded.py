"""The error a graded part's stub raises in the student build of genlab.

``genlab release`` (an instructor command) builds the library a student installs. In that
build every reference implementation of a graded part is a stub whose body is its
docstring plus ``raise GradedPartError(...)``: the student writes the part in the lab's
notebook, and the notebook passes the student's version into the library's models.
The full library (the repository) never raises it.
"""
from __future__ import annotations

__all__ = ["GradedPartError"]


class GradedPartError(NotImplementedError):
    """A graded part was called in the student build of genlab.

    ``part`` is the part's name (``"scaled_dot_product_attention"``), ``lab`` the lab's id
    (``"03"``) and ``title`` its title (``"the Transformer"``). The message is one line:
    ``"<part> is graded in lab NN (<title>): write it yourself in the notebook"``.
    """

    def __init__(self, part: str, lab: str, title: str):
        self.part, self.lab, self.title = part, lab, title
        super().__init__(f"{part} is graded in lab {lab} ({title}): write it yourself in the notebook")
