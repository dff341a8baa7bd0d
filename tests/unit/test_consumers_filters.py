"""Payload filters: a case table per operator, errors that name the key and the operator, and a
property: matching never raises, whatever the JSON."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookstream.consumers.filters import OPERATORS, FilterError, PayloadFilter

DOC = {
    "body": {
        "type": "payment_intent.succeeded",
        "livemode": False,
        "data": {"object": {"id": "pi_1", "amount": 2500, "currency": "eur", "metadata": {}}},
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
        "tags": ["vip", "eu"],
        "note": None,
    },
    "headers": {"x-github-event": "push"},
    "source": "stripe",
}

CASES = [
    # $eq, and a plain value as its shorthand
    ({"body.type": {"$eq": "payment_intent.succeeded"}}, True),
    ({"body.type": "payment_intent.succeeded"}, True),
    ({"body.type": {"$eq": "charge.refunded"}}, False),
    ({"body.livemode": {"$eq": 0}}, False),  # false is not 0
    ({"body.data.object.amount": 2500.0}, True),  # 2500 is 2500.0
    ({"body.tags": "vip"}, True),  # an array holds it when an element does
    ({"body.tags": ["vip", "eu"]}, True),  # or when it is the value
    ({"body.items.sku": "B-7"}, True),  # a path through an array: any element
    ({"body.items.1.sku": "B-7"}, True),  # a number indexes
    ({"body.items.0.sku": "B-7"}, False),
    ({"body": {"data": {"object": {"currency": "eur"}}}}, True),  # nested tables = dotted path
    ({"body.note": None}, True),
    # $neq
    ({"body.type": {"$neq": "charge.refunded"}}, True),
    ({"body.type": {"$neq": "payment_intent.succeeded"}}, False),
    ({"body.tags": {"$neq": "vip"}}, False),
    ({"body.missing": {"$neq": 1}}, True),
    # $in / $nin
    ({"body.data.object.currency": {"$in": ["usd", "eur"]}}, True),
    ({"body.data.object.currency": {"$in": ["usd"]}}, False),
    ({"body.tags": {"$in": ["eu", "us"]}}, True),
    ({"body.data.object.currency": {"$nin": ["usd", "gbp"]}}, True),
    ({"body.data.object.currency": {"$nin": ["eur"]}}, False),
    ({"body.missing": {"$nin": ["x"]}}, True),
    # $gt / $gte / $lt / $lte
    ({"body.data.object.amount": {"$gt": 2499}}, True),
    ({"body.data.object.amount": {"$gt": 2500}}, False),
    ({"body.data.object.amount": {"$gte": 2500}}, True),
    ({"body.data.object.amount": {"$lt": 2500}}, False),
    ({"body.data.object.amount": {"$lte": 2500}}, True),
    ({"body.data.object.amount": {"$gte": 1000, "$lt": 5000}}, True),
    ({"body.items.qty": {"$gt": 1}}, True),
    ({"body.type": {"$gt": 5}}, False),  # a string is not compared with a number
    ({"body.type": {"$gt": "payment"}}, True),  # strings compare with strings
    ({"body.livemode": {"$lt": 1}}, False),  # booleans are not numbers
    ({"body.missing": {"$gt": 0}}, False),
    # $exists
    ({"body.data.object.metadata": {"$exists": True}}, True),
    ({"body.note": {"$exists": True}}, True),  # null is there
    ({"body.missing": {"$exists": True}}, False),
    ({"body.missing": {"$exists": False}}, True),
    ({"body.items.sku": {"$exists": True}}, True),
    # $startsWith / $endsWith
    ({"body.type": {"$startsWith": "payment_intent."}}, True),
    ({"body.type": {"$startsWith": "charge."}}, False),
    ({"body.type": {"$endsWith": ".succeeded"}}, True),
    ({"body.items.sku": {"$endsWith": "-7"}}, True),
    ({"body.data.object.amount": {"$startsWith": "25"}}, False),  # not a string
    # $and / $or / $not, at the top and on one field
    ({"$and": [{"source": "stripe"}, {"body.livemode": False}]}, True),
    ({"$and": [{"source": "stripe"}, {"body.livemode": True}]}, False),
    ({"$or": [{"source": "github"}, {"headers.x-github-event": "push"}]}, True),
    ({"$or": [{"source": "github"}, {"body.livemode": True}]}, False),
    ({"$not": {"source": "github"}}, True),
    ({"$not": {"source": "stripe"}}, False),
    ({"body.type": {"$not": {"$startsWith": "charge."}}}, True),
    ({"body.data.object.amount": {"$or": [{"$lt": 100}, {"$gt": 2000}]}}, True),
    ({"body.data.object.amount": {"$and": [{"$gt": 100}, {"$lt": 2000}]}}, False),
    # side by side: all must hold
    ({"source": "stripe", "body.type": {"$startsWith": "payment_intent."}}, True),
    ({"source": "stripe", "body.type": {"$startsWith": "charge."}}, False),
    ({}, True),
]


@pytest.mark.parametrize(("spec", "expected"), CASES, ids=[repr(c[0])[:70] for c in CASES])
def test_filter_cases(spec, expected):
    assert PayloadFilter.parse(spec).matches(DOC) is expected


def test_every_operator_has_a_case():
    used = {key for spec, _ in CASES for key in _keys(spec) if key.startswith("$")}
    assert used == set(OPERATORS)


def _keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


@pytest.mark.parametrize(
    ("spec", "at", "operator", "message"),
    [
        ({"body.type": {"$regex": "x"}}, "body.type", "$regex", "unknown operator '$regex'"),
        ({"body": {"amount": {"$gt": [1]}}}, "body.amount", "$gt", "$gt: expected a number or a string"),
        ({"body.tags": {"$in": "vip"}}, "body.tags", "$in", "$in: expected a list of values"),
        ({"body.x": {"$exists": "yes"}}, "body.x", "$exists", "$exists: expected true or false"),
        ({"body.x": {"$startsWith": 1}}, "body.x", "$startsWith", "$startsWith: expected a string"),
        ({"$or": []}, "$or", "$or", "$or: expected a non-empty list"),
        ({"$gt": 1}, "$gt", "$gt", "$gt applies to a field"),
        ({"body.x": {"$eq": 1, "y": 2}}, "body.x.y", "", "mixes a field with operators"),
        ({"body..x": 1}, "body..x", "", "empty part"),
    ],
)
def test_errors_name_the_key_and_the_operator(spec, at, operator, message):
    with pytest.raises(FilterError) as caught:
        PayloadFilter.parse(spec)
    assert caught.value.at == at
    assert caught.value.operator == operator
    assert message in caught.value.message


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)
paths = st.lists(st.sampled_from(["body", "a", "b", "0", "1", "type", ""]), min_size=1, max_size=4).map(
    lambda parts: ".".join(p or "x" for p in parts)
)
operands = {
    "$eq": json_values,
    "$neq": json_values,
    "$in": st.lists(json_values, max_size=3),
    "$nin": st.lists(json_values, max_size=3),
    "$gt": st.integers() | st.floats() | st.text(max_size=4),
    "$gte": st.integers() | st.floats() | st.text(max_size=4),
    "$lt": st.integers() | st.floats() | st.text(max_size=4),
    "$lte": st.integers() | st.floats() | st.text(max_size=4),
    "$exists": st.booleans(),
    "$startsWith": st.text(max_size=4),
    "$endsWith": st.text(max_size=4),
}
field_conditions = st.one_of(
    *(st.builds(lambda op, v: {op: v}, st.just(op), strategy) for op, strategy in operands.items())
)
filters = st.recursive(
    st.dictionaries(paths, field_conditions, min_size=1, max_size=3),
    lambda children: st.one_of(
        st.builds(lambda cs: {"$and": cs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda cs: {"$or": cs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"$not": c}, children),
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(spec=filters, document=json_values)
def test_a_filter_never_raises_on_any_json(spec, document):
    result = PayloadFilter.parse(spec).matches(document)
    assert isinstance(result, bool)


@settings(max_examples=200, deadline=None)
@given(document=json_values)
def test_not_is_the_opposite(document):
    spec = {"body.a": {"$gt": 0}}
    assert PayloadFilter.parse({"$not": spec}).matches(document) is not PayloadFilter.parse(spec).matches(
        document
    )
