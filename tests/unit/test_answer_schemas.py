"""Answer schemas: one model per role gives the JSON schema sent and the check applied.

The schema is the portable strict subset every structured-output server accepts (every
property required, no extra properties, only a handful of keywords); the check names the
field that is missing or mistyped, so a bad answer is an ``invalid_plan`` an operator can
read. The offline engine's answers fit the schemas, as a model's must.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from factories import SAMPLE

from hephaestus.agent.answers import (
    OBJECTIVE,
    PATCH_PLAN,
    REVIEW,
    STRATEGY,
    InsertPatch,
    ObjectiveAnswer,
    PatchPlanAnswer,
    ReplacePatch,
    ReviewAnswer,
    StrategyAnswer,
)
from hephaestus.agent.manifest import scan
from hephaestus.llm.base import Message, Role
from hephaestus.llm.offline import OfflineProvider
from hephaestus.llm.schema import AnswerError, AnswerSchema, json_type

SCHEMAS = [OBJECTIVE, PATCH_PLAN, REVIEW, STRATEGY]
PORTABLE_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "anyOf",
    "items",
    "description",
}


def objects_in(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object schema nested in ``schema`` (itself included)."""
    found = [schema] if schema.get("type") == "object" else []
    for value in schema.get("properties", {}).values():
        found += objects_in(value)
    for option in schema.get("anyOf", []):
        found += objects_in(option)
    if "items" in schema:
        found += objects_in(schema["items"])
    return found


def keywords_in(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    words = set(schema) - {"properties"} if "properties" in schema else set(schema)
    nested = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
    if "items" in schema:
        nested.append(schema["items"])
    return words.union(*(keywords_in(n) for n in nested)) if nested else words


# -- the schema -------------------------------------------------------------------------------
@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name)
def test_every_object_requires_all_its_properties_and_allows_no_others(schema):
    root = schema.json_schema()

    assert root["type"] == "object"  # strict mode wants an object at the root
    for obj in objects_in(root):
        assert obj["required"] == list(obj["properties"])
        assert obj["additionalProperties"] is False


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name)
def test_the_schema_uses_only_portable_keywords(schema):
    assert keywords_in(schema.json_schema()) <= PORTABLE_KEYWORDS


def test_the_objective_is_nullable_and_every_optional_field_too():
    properties = OBJECTIVE.json_schema()["properties"]

    for name in ("objective", "kind", "file_path", "symbol", "rationale"):
        assert {"type": "null"} in properties[name]["anyOf"], name
    assert properties["objective"]["description"].startswith("one small, checkable")


def test_patches_are_one_of_four_shapes_told_apart_by_the_operation():
    item = PATCH_PLAN.json_schema()["properties"]["patches_to_apply"]["items"]
    shapes = {
        option["properties"]["operation"]["enum"][0]: option["required"] for option in item["anyOf"]
    }

    assert shapes == {
        "REPLACE": ["file_path", "operation", "block_to_replace", "content"],
        "CREATE_FILE": ["file_path", "operation", "content"],
        "INSERT": ["file_path", "operation", "line_number", "content"],
        "DELETE_BLOCK": ["file_path", "operation", "block_to_delete"],
    }


def test_choices_turn_a_string_field_into_an_enum_in_schema_and_check():
    schema = STRATEGY.with_choices(strategy=("FAST", "SAFE"))

    assert schema.json_schema()["properties"]["strategy"]["enum"] == ["FAST", "SAFE"]
    assert schema.validate({"strategy": "SAFE"}) == StrategyAnswer(strategy="SAFE")
    with pytest.raises(AnswerError, match="field strategy must be one of FAST, SAFE, got 'YOLO'"):
        schema.validate({"strategy": "YOLO"})
    assert "enum" not in STRATEGY.json_schema()["properties"]["strategy"]  # a copy was changed


def test_json_schema_returns_a_fresh_dict_each_time():
    first = REVIEW.json_schema()
    first["properties"].clear()

    assert REVIEW.json_schema()["properties"]


# -- the check --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "data", "message"),
    [
        (OBJECTIVE, {"task": "next_objective"}, "field objective is missing"),
        (OBJECTIVE, {"objective": 3}, "field objective must be a string, got integer"),
        (OBJECTIVE, {"objective": "x", "kind": []}, "field kind must be a string, got array"),
        (OBJECTIVE, [{"objective": "x"}], "the answer must be an object, got array"),
        (REVIEW, {"approved": "maybe", "feedback": ""}, "field approved must be true or false"),
        (REVIEW, {"approved": True}, "field feedback is missing"),
        (REVIEW, {"approved": 1, "feedback": ""}, "field approved must be true or false"),
        (STRATEGY, {"rationale": "x"}, "field strategy is missing"),
        (STRATEGY, {"strategy": None}, "field strategy must be a string, got null"),
        (
            PATCH_PLAN,
            {"analysis": "a", "patches_to_apply": [{"file_path": "a.py", "operation": 7}]},
            "field patches_to_apply[0].operation must be one of REPLACE, CREATE_FILE, INSERT, "
            "DELETE_BLOCK, got integer",
        ),
        (
            PATCH_PLAN,
            {
                "analysis": "a",
                "patches_to_apply": [
                    {"file_path": "a.py", "operation": "INSERT", "line_number": 1, "content": ""},
                    {"file_path": "a.py", "operation": "INSERT", "content": ""},
                ],
            },
            "field patches_to_apply[1].line_number is missing",
        ),
    ],
)
def test_a_bad_answer_names_the_field_and_the_problem(schema, data, message):
    with pytest.raises(AnswerError) as info:
        schema.validate(data)

    assert str(info.value).startswith(message)


def test_a_nullable_field_with_a_default_may_be_left_out_and_unknown_keys_are_ignored():
    answer = OBJECTIVE.validate({"objective": "Add a docstring", "confidence": 0.9})

    assert answer == ObjectiveAnswer(objective="Add a docstring")


def test_a_null_objective_is_an_answer_but_a_missing_one_is_not():
    assert OBJECTIVE.validate({"objective": None}).objective is None
    with pytest.raises(AnswerError, match="objective is missing"):
        OBJECTIVE.validate({"rationale": "nothing to do"})


def test_a_valid_plan_becomes_typed_patches():
    plan = PATCH_PLAN.validate(
        {
            "analysis": "two edits",
            "patches_to_apply": [
                {
                    "file_path": "a.py",
                    "operation": "REPLACE",
                    "block_to_replace": "x",
                    "content": "y",
                },
                {"file_path": "a.py", "operation": "INSERT", "line_number": 2, "content": "z\n"},
            ],
        }
    )

    assert plan == PatchPlanAnswer(
        analysis="two edits",
        patches_to_apply=[
            ReplacePatch("a.py", "REPLACE", block_to_replace="x", content="y"),
            InsertPatch("a.py", "INSERT", line_number=2, content="z\n"),
        ],
    )


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (3, "integer"),
        (2.5, "number"),
        ("s", "string"),
        ([], "array"),
        ({}, "object"),
    ],
)
def test_json_type_names_what_was_sent(value, name):
    assert json_type(value) == name


def test_a_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(AnswerError) as info:
        STRATEGY.with_choices(strategy=("A",)).validate({"strategy": "x" * 500})

    assert len(str(info.value)) < 150


def test_a_model_of_our_own_gets_the_same_treatment():
    @dataclass(frozen=True)
    class Vote:
        choice: Literal["yes", "no"]
        weights: list[int]

    schema = AnswerSchema("vote", Vote)

    assert schema.json_schema()["properties"]["weights"] == {
        "type": "array",
        "items": {"type": "integer"},
    }
    assert schema.validate({"choice": "no", "weights": [1, 2]}) == Vote("no", [1, 2])
    with pytest.raises(AnswerError, match=r"field weights\[1\] must be an integer, got boolean"):
        schema.validate({"choice": "no", "weights": [1, False]})
    with pytest.raises(AnswerError, match="field weights must be an array, got string"):
        schema.validate({"choice": "yes", "weights": "1,2"})
    with pytest.raises(AnswerError, match="field choice must be one of yes, no, got 'maybe'"):
        schema.validate({"choice": "maybe", "weights": []})


# -- the offline engine answers in the schemas' shape ------------------------------------------
def offline_answer(role: Role, payload: dict[str, Any]) -> Any:
    text = OfflineProvider().chat(role, "m", [Message("user", json.dumps(payload))]).text
    return json.loads(text)


def test_the_offline_engine_answers_every_role_in_its_schema():
    manifest = scan(SAMPLE, max_files=200, max_source_bytes=60_000)
    sources = {p: (SAMPLE / p).read_text() for p in manifest.sources}
    objective = offline_answer(Role.BRAIN, {"sources": sources})
    plan = offline_answer(
        Role.ARCHITECT,
        {
            "objective": objective,
            "files": {objective["file_path"]: sources[objective["file_path"]]},
        },
    )
    review = offline_answer(Role.CODE_REVIEWER, {"plan": plan, "files": sources})
    strategy = offline_answer(
        Role.MAESTRO, {"has_tests": True, "strategies": {"ALL": ["syntax", "pytest"]}}
    )

    assert OBJECTIVE.validate(objective).objective
    assert PATCH_PLAN.validate(plan).patches_to_apply
    assert REVIEW.validate(review) == ReviewAnswer(True, review["feedback"])
    assert STRATEGY.with_choices(strategy=("ALL",)).validate(strategy).strategy == "ALL"
