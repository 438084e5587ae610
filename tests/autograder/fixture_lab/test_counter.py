"""Hidden tests for `Counter` (fixture lab). HIDDEN-CANARY-counter: never shown to students."""
import pytest


@pytest.mark.points(2)
def test_counter_counts(submission):
    Counter = submission.function("Counter")
    counter = Counter(5)
    assert counter.increment() == 6, "Counter(5).increment() should return 6"
    assert counter.increment(by=3) == 9, "increment(by=3) should add 3"
    assert counter.getattr("count") == 9, "the count attribute should hold the current count"
