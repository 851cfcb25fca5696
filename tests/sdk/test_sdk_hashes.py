"""prompt_prefix_hash and request_hash: what they cover and what they ignore."""

from __future__ import annotations

import openai
from observatory_sdk.calls import read_request, request_hashes
from observatory_sdk.fingerprints import fingerprint
from observatory_sdk.integrations.anthropic import MESSAGES as ANTHROPIC_MESSAGES
from observatory_sdk.integrations.openai import CHAT, RESPONSES
from observatory_sdk.settings import load_settings

SYSTEM = {"role": "system", "content": "You are a support bot for ACME."}
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]


def _hashes(operation, **request):
    """The two hashes as a span carries them: the request is read when the call starts, hashed later."""
    _, snapshot = read_request(operation, request, None, load_settings(endpoint="http://127.0.0.1:1"))
    hashes = request_hashes(operation, snapshot)
    return hashes.get("observatory.prompt_prefix_hash"), hashes.get("observatory.request_hash")


def test_the_prefix_hash_covers_system_tools_and_first_message_only():
    first = {"role": "user", "content": "Here is my order history: ..."}
    turn_one = [SYSTEM, first, {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "A?"}]
    turn_two = [SYSTEM, first, {"role": "assistant", "content": "Ok."}, {"role": "user", "content": "B?"}]

    prefix_one, request_one = _hashes(CHAT, model="gpt-4o-mini", messages=turn_one, tools=TOOLS)
    prefix_two, request_two = _hashes(CHAT, model="gpt-4o-mini", messages=turn_two, tools=TOOLS)
    prefix_other_tools, _ = _hashes(CHAT, model="gpt-4o-mini", messages=turn_one)
    prefix_other_system, _ = _hashes(
        CHAT, model="gpt-4o-mini", messages=[{"role": "developer", "content": "Other."}, *turn_one[1:]], tools=TOOLS
    )

    assert prefix_one == prefix_two
    assert request_one != request_two
    assert len({prefix_one, prefix_other_tools, prefix_other_system}) == 3


def test_the_prefix_hash_matches_the_documented_recipe():
    first = {"role": "user", "content": "Hi"}
    prefix, _ = _hashes(CHAT, model="gpt-4o-mini", messages=[SYSTEM, first, {"role": "user", "content": "x"}])

    assert prefix == fingerprint({"system": [SYSTEM], "tools": None, "first": first})


def test_the_request_hash_ignores_stream_user_and_metadata_fields():
    messages = [SYSTEM, {"role": "user", "content": "Where is order 42?"}]
    _, plain = _hashes(CHAT, model="gpt-4o-mini", messages=messages)
    _, noisy = _hashes(
        CHAT,
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        user="u-1",
        metadata={"trace": "abc"},
        timeout=30,
        extra_headers={"x-request": "1"},
        top_p=openai.omit,
    )
    _, other_model = _hashes(CHAT, model="gpt-4o", messages=messages)

    assert plain == noisy
    assert plain != other_model


def test_operations_with_the_same_body_hash_differently():
    _, chat = _hashes(CHAT, model="m", input="hello")
    _, responses = _hashes(RESPONSES, model="m", input="hello")

    assert chat != responses


def test_anthropic_prefix_is_system_tools_and_first_message():
    first = {"role": "user", "content": "Document: ..."}
    prefix_one, _ = _hashes(ANTHROPIC_MESSAGES, model="c", system="Be brief.", messages=[first])
    prefix_two, _ = _hashes(
        ANTHROPIC_MESSAGES,
        model="c",
        system="Be brief.",
        messages=[first, {"role": "assistant", "content": "Ok"}, {"role": "user", "content": "Q"}],
    )

    assert prefix_one == prefix_two
    assert prefix_one == fingerprint({"system": "Be brief.", "tools": None, "first": first})


def test_an_unreadable_request_gets_no_hash_instead_of_a_wrong_one():
    prefix, request = _hashes(CHAT, model="gpt-4o-mini", messages=iter([SYSTEM]))

    assert prefix is None
    assert request is None


def test_appending_to_the_messages_list_after_the_call_does_not_change_its_hash(openai_client, exported):
    messages = [SYSTEM, {"role": "user", "content": "Where is order 42?"}]
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    messages.append({"role": "assistant", "content": "On its way."})
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages[:2])

    first, second = (span["attributes"] for span in exported(2))
    assert first["observatory.request_hash"] == second["observatory.request_hash"]


DOCUMENT = "".join(f"Clause {n}: the supplier delivers on time. " for n in range(12_000))  # ~500k chars


def _with_document(text):
    return _hashes(CHAT, model="gpt-4o-mini", messages=[SYSTEM, {"role": "user", "content": text}])


def test_a_long_prompt_hashes_the_same_every_time_and_differs_at_either_end():
    prefix, request = _with_document(DOCUMENT)
    copy_prefix, copy_request = _with_document("".join(list(DOCUMENT)))  # equal, another object
    _, other_question = _with_document(DOCUMENT + " Summarize.")
    _, other_opening = _with_document("X" + DOCUMENT[1:])

    assert (prefix, request) == (copy_prefix, copy_request)
    assert len({request, other_question, other_opening}) == 3


def test_a_long_prompt_is_hashed_from_its_length_ends_and_evenly_spaced_samples():
    middle = len(DOCUMENT) // 2 + 7  # inside no sampled slice
    sampled = DOCUMENT[: middle - 3] + "!!!" + DOCUMENT[middle:]
    assert len(sampled) == len(DOCUMENT)

    assert _with_document(sampled) == _with_document(DOCUMENT)
    assert _with_document(DOCUMENT[:-3] + "!!!") != _with_document(DOCUMENT)


def test_a_long_messages_list_is_hashed_from_its_length_ends_and_samples():
    turns = [{"role": "user", "content": f"question {n}"} for n in range(500)]
    _, request = _hashes(CHAT, model="m", messages=turns)
    _, one_more = _hashes(CHAT, model="m", messages=[*turns, {"role": "user", "content": "again"}])
    _, last_changed = _hashes(CHAT, model="m", messages=[*turns[:-1], {"role": "user", "content": "other"}])

    assert len({request, one_more, last_changed}) == 3


def test_a_string_and_a_number_of_the_same_text_hash_differently():
    assert fingerprint({"a": "1"}) != fingerprint({"a": 1}) != fingerprint({"a": 1.0})
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])


CONTRACT = "".join(f"Clause {n}: the supplier delivers the goods listed in schedule {n % 97} on time. " for n in range(5600))


def test_the_hashes_keep_their_values_across_sdk_releases():
    """Values written by SDK 0.2 before the faster canonical writer: the dashboard groups calls by these
    hashes, so spans from both releases of the same request must still land in one group. A string longer than
    4096 characters is written from its 256 first and last characters since 0.3 (1024 before: the long document's
    hashes are 0.3's)."""
    short = _hashes(
        CHAT,
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Say hello."}],
        max_tokens=100,
    )
    long_document = _hashes(
        CHAT,
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Read it."}, {"role": "user", "content": "Summarize:\n\n" + CONTRACT}],
        temperature=0.5,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "enum": list(range(100))}}}],
    )
    anthropic_blocks = _hashes(
        ANTHROPIC_MESSAGES,
        model="claude-sonnet-4",
        system="Be brief.",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        max_tokens=5,
    )

    assert short == ("b31e35417d689e862e7c211c1722fff2", "1bb76cf378bb7b1eefa61b1bd05bb7e2")
    assert long_document == ("ca55a885dc43ce7e3ef0d3c21fe67cab", "9cd909f3ce063b2c020237d4388e1b43")
    assert anthropic_blocks == ("0c5cf16aa07c4acc3112fc2f4b837263", "f364ad17af567553befc34e96400d33f")


def test_changing_a_message_after_the_call_does_not_change_its_hashes(openai_client, exported):
    """The request is copied when the call starts (containers only) and hashed later on the export
    thread: an app editing its message dicts in place after the call cannot change what was sent."""
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
    first = {"role": "user", "content": [{"type": "text", "text": "Where is order 42?"}]}
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[SYSTEM, first], tools=tools)
    first["content"][0]["text"] = "Where is order 43?"
    tools[0]["function"]["name"] = "cancel_order"
    openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[SYSTEM, {"role": "user", "content": [{"type": "text", "text": "Where is order 42?"}]}],
        tools=[{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}],
    )

    edited, fresh = (span["attributes"] for span in exported(2))
    assert edited["observatory.request_hash"] == fresh["observatory.request_hash"]
    assert edited["observatory.prompt_prefix_hash"] == fresh["observatory.prompt_prefix_hash"]


def test_a_long_conversation_hashes_as_before():
    """A list longer than 64 items is copied as the items its hash reads; the value is unchanged."""
    turns = [{"role": "user" if n % 2 else "assistant", "content": f"turn {n}"} for n in range(200)]

    assert _hashes(CHAT, model="gpt-4o-mini", messages=[SYSTEM, *turns]) == (
        "fe011555f129e06b0e0c69ebbd62c1ce",
        "13d091fbaa5580c52d431bd7335af82e",
    )


def test_remembered_prefix_hashes_are_the_hashes_themselves_however_many_prefixes(monkeypatch):
    """Prefix hashes are looked up by canonical text once computed; past PREFIX_HASHES_KEPT prefixes the table
    starts again, and every lookup still gives the recipe's hash."""
    from observatory_sdk import calls

    monkeypatch.setattr(calls, "PREFIX_HASHES_KEPT", 2)
    monkeypatch.setattr(calls, "_prefix_hashes", {})
    first = {"role": "user", "content": "Hi"}
    for _ in range(2):
        for number in range(5):
            system = {"role": "system", "content": f"You are bot {number}."}
            prefix, _ = _hashes(CHAT, model="gpt-4o-mini", messages=[system, first])
            assert prefix == fingerprint({"system": [system], "tools": None, "first": first})
    assert len(calls._prefix_hashes) <= 2
