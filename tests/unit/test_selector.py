"""The selector grammar (docs/protocol.md): filters all hold, bare name globs any match, empty is
nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ErrorCode, ProtocolError
from protocol.selector import Selector, SelectorError, parse_selector


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    role: str = "worker"
    host: str = "box"
    enabled: bool = True
    online: bool = True
    status: str = "idle"
    tags: Sequence[str] = ()


class PropertyClient:
    """A client whose fields are properties, as a model class may have them."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    role = property(lambda self: "hardware")
    host = property(lambda self: "pi.local")
    enabled = property(lambda self: True)
    online = property(lambda self: False)
    status = property(lambda self: "offline")
    tags = property(lambda self: ["gpio"])


FLEET = [
    Client("render-01", host="Render-Box1", tags=("gpu", "linux")),
    Client("render-02", host="render-box2", status="busy", tags=("gpu",)),
    Client("render-10", host="rack.example", enabled=False, tags=("linux",)),
    Client("render-11", online=False, status="offline"),
    Client("keg1", role="hardware", host="pi-bar", tags=("kegboard",)),
    Client("Keg2", role="hardware", host="pi-cellar", online=False, status="offline"),
    Client("dash", role="api", host="localhost"),
]


def selected(text: str | None) -> list[str]:
    selector = parse_selector(text)
    return [client.name for client in FLEET if selector.matches(client)]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("all", [c.name for c in FLEET]),
        ("ALL", [c.name for c in FLEET]),
        ("enabled", ["render-01", "render-02", "render-11", "keg1", "Keg2", "dash"]),
        ("disabled", ["render-10"]),
        ("online", ["render-01", "render-02", "render-10", "keg1", "dash"]),
        ("offline", ["render-11", "Keg2"]),
        ("idle", ["render-01", "render-10", "keg1", "dash"]),
        ("Busy", ["render-02"]),
        ("role=hardware", ["keg1", "Keg2"]),
        ("role=Hardware", []),  # values are case-sensitive
        ("ROLE=api", ["dash"]),  # keys are not
        ("tag=gpu", ["render-01", "render-02"]),
        ("tag=GPU", []),
        ("tag=gpu tag=linux", ["render-01"]),
        ("host=render-box*", ["render-01", "render-02"]),  # host globs ignore case
        ("host=PI-*", ["keg1", "Keg2"]),
        ("host=pi-ba?", ["keg1"]),
        ("render-0*", ["render-01", "render-02"]),
        ("render-?1", ["render-01", "render-11"]),
        ("render-[01]0", ["render-10"]),
        ("render-[!0]*", ["render-10", "render-11"]),
        ("keg*", ["keg1"]),  # names are case-sensitive
        ("keg1 dash", ["keg1", "dash"]),  # bare words: any may match
        ("keg1 dash role=api", ["dash"]),  # filters: all must hold
        ("render-* online idle enabled", ["render-01"]),
        ("render-* offline busy", []),
        ("nobody", []),
        ("  all\t ", [c.name for c in FLEET]),
    ],
)
def test_selectors_choose_exactly_these_clients(text: str, names: list[str]) -> None:
    assert selected(text) == names


@pytest.mark.parametrize("text", [None, "", " ", "\t\n  "])
def test_an_empty_selector_selects_nothing(text: str | None) -> None:
    selector = parse_selector(text)
    assert selector.is_empty
    assert selected(text) == []


def test_a_non_empty_selector_is_not_empty() -> None:
    assert not parse_selector("all").is_empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour=red", "unknown filter 'colour' (known: role, tag, host)"),
        ("all Name=x", "unknown filter 'name' (known: role, tag, host)"),
        ("=x", "unknown filter '' (known: role, tag, host)"),
        ("role=", "empty value in 'role='"),
        ("idle tag=", "empty value in 'tag='"),
        ("host=", "empty value in 'host='"),
    ],
)
def test_bad_terms_raise_selector_error_naming_the_term(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert str(info.value) == message
    assert isinstance(info.value, ProtocolError)
    assert info.value.code is ErrorCode.INVALID_PARAMS
    assert info.value.reason == "bad_selector"


def test_clients_with_properties_satisfy_the_protocol() -> None:
    client = PropertyClient("keg3")
    assert parse_selector("keg* role=hardware offline tag=gpio host=PI.*").matches(client)
    assert not parse_selector("keg* online").matches(client)


def test_selectors_compare_by_text_and_parse_the_same_way() -> None:
    assert parse_selector("idle") == Selector("idle")
    assert parse_selector(None) == Selector("")
    assert parse_selector("role=api").text == "role=api"
    with pytest.raises(SelectorError):
        Selector("colour=red")


def test_a_value_may_contain_an_equals_sign() -> None:
    assert parse_selector("tag=a=b").matches(Client("x", tags=("a=b",)))


terms = st.sampled_from(
    [
        "all",
        "idle",
        "busy",
        "online",
        "offline",
        "enabled",
        "disabled",
        "role=worker",
        "role=hardware",
        "tag=gpu",
        "host=pi-*",
        "render-*",
        "keg?",
        "[",
        "x=y",
        "role=",
    ]
)


@given(st.lists(terms | st.text(max_size=12), max_size=5).map(" ".join))
def test_any_text_parses_or_raises_selector_error_and_matching_never_fails(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError:
        return
    for client in FLEET:
        assert isinstance(selector.matches(client), bool)


@given(
    st.lists(
        st.sampled_from(["enabled", "online", "idle", "tag=gpu", "host=*box*"]),
        min_size=1,
        max_size=4,
    )
)
def test_filters_combine_with_and(filter_terms: list[str]) -> None:
    combined = set(selected(" ".join(filter_terms)))
    assert combined == set.intersection(*(set(selected(term)) for term in filter_terms))


@given(
    st.lists(st.sampled_from(["render-0*", "keg1", "dash", "nobody", "*1"]), min_size=1, max_size=4)
)
def test_name_globs_combine_with_or(globs: list[str]) -> None:
    combined = set(selected(" ".join(globs)))
    assert combined == set.union(*(set(selected(glob)) for glob in globs))
