"""The team a context span inherits from its export's calls (ingest.span_owners): the nearest evidence, if it agrees.

Spans are named by one letter; SEARCH and ADS are (team, product) owners as ingest resolved them for the calls.
"""

import pytest

from ingest.span_owners import SpanRef, agreed_owner, inherited_owners

SEARCH, ADS, UNATTRIBUTED = (1, 10), (2, 20), (None, None)
TRACE = "t" * 32


def ref(span_id: str, parent: str = "", service: str = "search") -> SpanRef:
    return SpanRef(TRACE, span_id, parent, service)


def owners_of(spans, calls) -> dict[str, tuple | None]:
    return {span.span_id: owner for span, owner in zip(spans, inherited_owners(spans, calls), strict=True)}


def test_a_span_under_a_call_takes_its_team():
    assert owners_of([ref("h", "c")], [(ref("c"), SEARCH)]) == {"h": SEARCH}


def test_a_span_over_a_call_takes_its_team_through_other_spans():
    spans = [ref("r"), ref("m", "r")]
    assert owners_of(spans, [(ref("c", "m"), SEARCH)]) == {"r": SEARCH, "m": SEARCH}


def test_a_root_over_two_teams_calls_of_its_own_service_gets_none():
    spans = [ref("r")]
    calls = [(ref("s", "r"), SEARCH), (ref("a", "r"), ADS)]
    assert owners_of(spans, calls) == {"r": None}


def test_its_own_services_calls_decide_before_another_services():
    # the Search gateway root is over a Search call and, through an HTTP hop, the ads service's call
    spans = [ref("r"), ref("hop", "r"), ref("a-root", "hop", "ads"), ref("a-db", "a-root", "ads")]
    calls = [(ref("s", "r"), SEARCH), (ref("a", "a-root", "ads"), ADS)]
    assert owners_of(spans, calls) == {"r": SEARCH, "hop": SEARCH, "a-root": ADS, "a-db": ADS}


def test_a_sibling_of_a_call_takes_its_services_team():
    assert owners_of([ref("db", "root", "ads")], [(ref("a", "root", "ads"), ADS)]) == {"db": ADS}


def test_a_service_of_two_teams_is_decided_by_the_spans_own_call():
    spans = [ref("h1", "s"), ref("h2", "a"), ref("other")]
    calls = [(ref("s"), SEARCH), (ref("a"), ADS)]
    assert owners_of(spans, calls) == {"h1": SEARCH, "h2": ADS, "other": None}


def test_another_services_calls_count_only_through_ancestry():
    spans = [ref("tool", "c", "tools"), ref("loner", "", "tools")]
    assert owners_of(spans, [(ref("c"), SEARCH)]) == {"tool": SEARCH, "loner": None}


def test_a_span_next_to_an_unattributed_call_gets_none():
    spans = [ref("h", "c"), ref("r")]
    calls = [(ref("c", "r"), UNATTRIBUTED), (ref("d", "r"), SEARCH)]
    assert owners_of(spans, calls) == {"h": None, "r": None}


def test_other_traces_and_missing_parents_give_nothing():
    spans = [SpanRef("u" * 32, "h", "c", "")]
    assert owners_of(spans, [(SpanRef(TRACE, "c", "", ""), SEARCH)]) == {"h": None}
    assert owners_of([ref("h", "gone", "")], [(ref("c", "", "other"), SEARCH)]) == {"h": None}
    assert inherited_owners([ref("h")], []) == [None]


def test_a_parent_cycle_ends_the_walk():
    spans = [ref("x", "y", ""), ref("y", "x", "")]
    assert owners_of(spans, [(ref("c", "x", "other"), SEARCH)]) == {"x": SEARCH, "y": SEARCH}


@pytest.mark.parametrize(("owners", "agreed"), [
    ([SEARCH], SEARCH),
    ([SEARCH, SEARCH], SEARCH),
    ([SEARCH, (1, 11)], (1, None)),
    ([SEARCH, (1, None)], (1, None)),
    ([SEARCH, ADS], None),
    ([SEARCH, UNATTRIBUTED], None),
    ([UNATTRIBUTED], None),
    ([(None, 10)], None),
])
def test_owners_agree_only_on_one_team(owners, agreed):
    assert agreed_owner(owners) == agreed
