"""extract_json finds the JSON object in a model's answer and never rewrites it.

Models wrap their JSON in prose and Markdown fences; the object itself, and any code inside
its strings, must reach the agent exactly as the model wrote it.
"""

from __future__ import annotations

import json
import random

import pytest

from hephaestus.llm.jsontext import (
    InvalidModelOutput,
    extract_json,
    lone_surrogate,
    nesting_depth,
)

PLAN = {
    "analysis": "add a docstring",
    "patches_to_apply": [
        {
            "file_path": "pkg/mod.py",
            "operation": "INSERT",
            "line_number": 3,
            "content": '    """Do it."""\n',
        }
    ],
}
TEXT = json.dumps(PLAN)

# code a model might put inside JSON strings: fences, braces, backslashes, escapes
TRICKY_CODE = {
    "fences": "```python\ndef f():\n    return {}\n```\n",
    "braces": "d = {'a': {1, 2}}; s = f'{d!r}' + '}{'\n",
    "backslashes": "PATH = 'C:\\\\temp\\\\new'\nRX = re.compile(r'\\d+\\.\\s*')\n",
    "escapes": "print('line one\\nline two\\t!')\n",
    "quotes": 'say = "she said \\"hi\\""\n',
    "unicode": "name = 'café ☕'  # \u2028 separator\n",
    "json_like": '{"not": "parsed"}',
}


def test_plain_json_object():
    assert extract_json(TEXT) == PLAN


def test_surrounding_whitespace_is_ignored():
    assert extract_json(f"\n\n  {TEXT}\n\t ") == PLAN


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(f"```json\n{TEXT}\n```", id="json-fence"),
        pytest.param(f"```\n{TEXT}\n```", id="bare-fence"),
        pytest.param(f"Here is the plan:\n\n{TEXT}", id="leading-prose"),
        pytest.param(f"{TEXT}\n\nLet me know if you need anything else.", id="trailing-prose"),
        pytest.param(
            f"Sure! Here you go:\n```json\n{TEXT}\n```\nThis adds a docstring.",
            id="prose-around-a-fence",
        ),
        pytest.param(
            f"Use {{braces}} wisely, or {{ even {{this. Plan: {TEXT}", id="stray-braces-in-prose"
        ),
        pytest.param(f"{{not json at all\n{TEXT}", id="broken-object-first"),
    ],
)
def test_object_is_found_inside_prose_and_fences(answer):
    assert extract_json(answer) == PLAN


def test_first_of_two_objects_wins():
    assert extract_json('{"first": 1}\n{"second": 2}') == {"first": 1}


def test_first_of_two_fenced_objects_wins():
    answer = '```json\n{"first": 1}\n```\nor maybe\n```json\n{"second": 2}\n```'

    assert extract_json(answer) == {"first": 1}


def test_object_after_a_json_array_is_found():
    assert extract_json('[1, 2, 3]\n{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param("{}", id="bare"),
        pytest.param("```json\n{}\n```", id="fenced"),
        pytest.param("Plan below {{ok}}:\n```json\n{}\n```\nDone.", id="prose-and-fence"),
    ],
)
@pytest.mark.parametrize("name", sorted(TRICKY_CODE))
def test_code_inside_strings_comes_back_byte_identical(wrap, name):
    payload = {
        "patches_to_apply": [
            {"content": TRICKY_CODE[name], "block_to_replace": TRICKY_CODE[name][::-1]}
        ]
    }

    result = extract_json(wrap.format(json.dumps(payload)))

    assert result == payload
    assert result["patches_to_apply"][0]["content"].encode() == TRICKY_CODE[name].encode()


def test_non_ascii_json_as_written_by_a_model_is_kept():
    answer = '```json\n{"content": "x = \'naïve\' \\u00e9\\n"}\n```'

    assert extract_json(answer) == {"content": "x = 'naïve' é\n"}


def test_escapes_are_not_repaired():
    # an invalid escape is the model's mistake; fixing it would silently change the code
    with pytest.raises(InvalidModelOutput):
        extract_json('{"content": "C:\\temp\\q"}')


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\t ", id="whitespace"),
        pytest.param(None, id="none"),
        pytest.param(42, id="number"),
        pytest.param(b'{"a": 1}', id="bytes"),
        pytest.param("[1, 2, 3]", id="array-only"),
        pytest.param('"just a string"', id="json-string"),
        pytest.param("null", id="json-null"),
        pytest.param("I could not find anything to improve.", id="prose-only"),
        pytest.param("{'single': 'quotes'}", id="python-dict"),
        pytest.param('{"unterminated": "plan"', id="truncated"),
        pytest.param("```json\n```", id="empty-fence"),
    ],
)
def test_answer_without_a_json_object_is_invalid_model_output(answer):
    with pytest.raises(InvalidModelOutput) as info:
        extract_json(answer)

    assert str(info.value)


def test_error_message_quotes_the_start_of_the_answer():
    with pytest.raises(InvalidModelOutput, match="I could not find"):
        extract_json("I could not find\nanything to improve.")


def test_invalid_model_output_is_a_value_error():
    assert issubclass(InvalidModelOutput, ValueError)


# -- answers that are too deep or not text at all ---------------------------------------------
@pytest.mark.parametrize(
    "answer",
    [
        "[" * 100_000,
        '{"a": ' + "[" * 65 + "]" * 65 + "}",
        "Here: " + "{" * 5000,
    ],
    ids=["deep-array", "65-levels", "deep-in-prose"],
)
def test_an_answer_nested_deeper_than_64_levels_is_refused_without_decoding(answer):
    with pytest.raises(InvalidModelOutput, match="nested"):
        extract_json(answer)


def test_64_levels_are_fine():
    answer = '{"a": ' + "[" * 63 + "]" * 63 + "}"

    assert nesting_depth(answer) == 64
    assert isinstance(extract_json(answer)["a"], list)


def depth_by_characters(text: str) -> int:
    """The rule, a character at a time: brackets count outside strings, escapes are skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


@pytest.mark.parametrize(
    "text",
    [
        r'{"a": "\"[[[", "b": [{}]}',  # an escaped quote does not end the string
        r'{"a": "\\", "b": [[1]]}',  # an escaped backslash does not escape the quote after it
        '{"a": "[[[',  # an unterminated string hides everything after it
        '{"a": [1, "x\\',  # ...also when it ends on a lone backslash
        '{"a": "line\\\n[", "b": [[[]]]}',  # an escaped newline inside a string
        "]]]}}[{",  # closing brackets never take the depth below zero
    ],
)
def test_the_depth_follows_json_strings_and_escapes(text):
    assert nesting_depth(text) == depth_by_characters(text)


def test_the_depth_matches_the_character_rule_on_random_text():
    rng = random.Random(7)
    alphabet = '[]{}"\\ a\n'
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        assert nesting_depth(text) == depth_by_characters(text), text


def test_brackets_inside_strings_do_not_count_as_nesting():
    answer = json.dumps({"content": "[" * 500 + "{" * 500})

    assert nesting_depth(answer) == 1
    assert extract_json(answer) == {"content": "[" * 500 + "{" * 500}


@pytest.mark.parametrize(
    "answer",
    [
        '{"content": "\\ud800"}',
        '{"content": "ok", "k\\udfff": 1}',
        '{"content": "x\ud800y"}',
        'prose \udc80 {"content": "ok"}',
    ],
    ids=["escaped-high", "escaped-in-a-key", "raw", "raw-in-prose"],
)
def test_a_lone_surrogate_raw_or_escaped_is_refused(answer):
    with pytest.raises(InvalidModelOutput, match="surrogate"):
        extract_json(answer)


def test_a_surrogate_pair_is_just_an_emoji():
    assert extract_json('{"content": "\\ud83d\\ude00"}') == {"content": "\U0001f600"}
    assert not lone_surrogate("\U0001f600")
