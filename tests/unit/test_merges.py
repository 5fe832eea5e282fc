"""Merging sorted streams: each item is read once, in order; what is passed over is reported."""

from hypothesis import given
from hypothesis import strategies as st

from shared.merges import SortedStream, distinct, found_in, missing_from

names = st.lists(st.text(alphabet="abcdef", min_size=1, max_size=4), unique=True).map(sorted)


def test_seek_finds_by_key_and_reports_what_it_passes_over():
    skipped = []
    stream = SortedStream(
        iter([("a", 1), ("c", 3), ("d", 4), ("f", 6)]), key=lambda item: item[0], on_skip=skipped.append
    )
    assert stream.seek("c") == ("c", 3)
    assert skipped == [("a", 1)]
    assert stream.seek("e") is None  # "d" is below it: passed over
    assert skipped == [("a", 1), ("d", 4)]
    assert stream.contains("f")
    assert not stream.contains("g")
    stream.drain()
    assert skipped == [("a", 1), ("d", 4)]


def test_drain_reports_the_rest():
    skipped = []
    stream = SortedStream(["a", "b", "c"], str, on_skip=skipped.append)
    stream.seek("a")
    stream.drain()
    assert skipped == ["b", "c"]


def test_it_reads_lazily():
    consumed = []

    def items():
        for name in ["a", "b", "c", "d"]:
            consumed.append(name)
            yield name

    stream = SortedStream(items(), str)
    assert stream.seek("b") == "b"
    assert consumed == ["a", "b", "c"]  # one ahead, never the whole stream


@given(names, names)
def test_missing_and_found_are_the_set_operations(left, right):
    assert list(missing_from(left, right)) == [name for name in left if name not in set(right)]
    assert list(found_in(left, right)) == [name for name in left if name in set(right)]


@given(st.lists(st.text(alphabet="ab", max_size=2)).map(sorted))
def test_distinct_drops_repeats(items):
    assert list(distinct(items)) == sorted(set(items))
