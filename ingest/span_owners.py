"""Which team (and product) a context span inherits from the model calls of its export, when nothing names one.

The nearest evidence decides, and it must agree:

1. calls of the span's own service (resource `service.name`) that are its ancestors or descendants in the export;
2. else any call of its service in the export;
3. else calls of any service that are its ancestors or descendants.

The first of these that holds any call gives its team if every call in it has that one team (their product too,
when they share one); calls of two teams, or of a team and none, give nothing. A span of two teams' request (a
gateway root over a Search call and an Ads call) so stays without a team, visible to org-wide viewers only.
Plain data in, plain data out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MAX_ANCESTOR_HOPS = 64

Owner = tuple[int | None, int | None]  # (team id, product id)
_Key = tuple[str, str]  # (trace id, span id)


@dataclass(frozen=True, slots=True)
class SpanRef:
    """Where a span sits in its export: its ids, its parent and its service."""

    trace_id: str
    span_id: str
    parent_span_id: str
    service_name: str

    @property
    def key(self) -> _Key:
        return self.trace_id, self.span_id


def agreed_owner(owners: Sequence[Owner]) -> Owner | None:
    """The one team all `owners` have (with their product when they share one), else None.

    >>> agreed_owner([(1, 7), (1, 7)]), agreed_owner([(1, 7), (1, 8)]), agreed_owner([(1, 7), (2, 7)])
    ((1, 7), (1, None), None)
    """
    teams = {team for team, _ in owners}
    if len(teams) != 1 or None in teams:
        return None
    products = {product for _, product in owners}
    return teams.pop(), products.pop() if len(products) == 1 else None


def inherited_owners(spans: Sequence[SpanRef], calls: Sequence[tuple[SpanRef, Owner]]) -> list[Owner | None]:
    """For each of `spans` (in order), the owner it inherits from `calls` (see the module docstring), or None."""
    if not calls:
        return [None] * len(spans)
    parents: dict[_Key, str] = {span.key: span.parent_span_id for span in spans}
    parents.update((call.key, call.parent_span_id) for call, _ in calls)
    call_at = {call.key: (call, owner) for call, owner in calls}
    below: dict[_Key, list[tuple[SpanRef, Owner]]] = defaultdict(list)
    by_service: dict[str, list[Owner]] = defaultdict(list)
    for call, owner in calls:
        for ancestor in _ancestors(call.key, parents):
            below[ancestor].append((call, owner))
        if call.service_name:
            by_service[call.service_name].append(owner)
    found: list[Owner | None] = []
    for span in spans:
        related = [call_at[key] for key in _ancestors(span.key, parents) if key in call_at] + below.get(span.key, [])
        service = span.service_name
        evidence = (
            service and [owner for call, owner in related if call.service_name == service]
        ) or by_service.get(service, []) or [owner for _, owner in related]
        found.append(agreed_owner(evidence) if evidence else None)
    return found


def _ancestors(key: _Key, parents: dict[_Key, str]) -> Iterator[_Key]:
    """The span's ancestors present in the export, nearest first; stops at a missing parent or a cycle."""
    trace_id = key[0]
    seen = {key}
    parent = parents.get(key, "")
    for _ in range(MAX_ANCESTOR_HOPS):
        above = (trace_id, parent)
        if not parent or above in seen or above not in parents:
            return
        seen.add(above)
        yield above
        parent = parents[above]
