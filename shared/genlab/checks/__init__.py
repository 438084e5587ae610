"""Public sanity checks that the lab notebooks call after each graded part.

A check prints one short ``✓`` line when the part looks right and raises
``AssertionError`` with a hint when it does not. Checks are friendly, not exhaustive:
the hidden autograder tests cover more cases.

    from genlab.checks import lab03
    lab03.check_scaled_dot_product_attention(scaled_dot_product_attention)
"""
