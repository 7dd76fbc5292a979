"""Property-based invariants of the template miner."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.processing.templates import TemplateMiner

WORDS = st.sampled_from(["error", "user", "Connection", "to", "failed", "(uid=0)", "key=value,", "x.y.z"])
VARIABLES = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.from_regex(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d{2,5})?", fullmatch=True),
    st.from_regex(r"(blk_|0x|id=)[0-9a-f]{1,12}[,;)]?", fullmatch=True),
    st.from_regex(r"/[a-z]{1,5}(/[a-z0-9_.]{1,6}){1,3}", fullmatch=True),
)
MESSAGES = st.lists(st.one_of(WORDS, VARIABLES), min_size=1, max_size=12).map(" ".join)


def render(template: str, params: list[str]) -> str:
    """Put parameter values back into the template's wildcards."""
    pieces = template.split("<*>")
    out = [pieces[0]]
    for value, piece in zip(params, pieces[1:]):
        out += [value, piece]
    return "".join(out)


@settings(max_examples=150, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=25))
def test_params_rebuild_the_message_and_match_agrees(messages: list[str]) -> None:
    miner = TemplateMiner()
    for message in messages:
        learned = miner.add(message)
        assert learned.template.count("<*>") == len(learned.params)
        assert render(learned.template, learned.params) == " ".join(message.split())
    for message in messages:
        found = miner.match(message)
        assert found is not None
        assert render(found.template, found.params) == " ".join(message.split())


@settings(max_examples=50, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=25))
def test_ids_are_deterministic(messages: list[str]) -> None:
    first, second = TemplateMiner(), TemplateMiner()
    assert [m.template_id for m in first.add_batch(messages)] == [
        m.template_id for m in second.add_batch(messages)]
    assert TemplateMiner.from_snapshot(first.snapshot()).templates() == first.templates()
