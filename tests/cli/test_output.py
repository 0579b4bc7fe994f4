"""``output_options`` and ``emit``: the openstack CLI's -f/-c/--fit-width conventions."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import click
import pytest
import yaml
from click.testing import CliRunner

from stackwatch.cli.output import box_table, emit, output_options

COLUMNS = ["Host", "Service", "Last seen", "Events", "Tags"]
ROWS: list[dict[str, object]] = [
    {"Host": "ctl1", "Service": "keystone", "Last seen": datetime(2026, 3, 2, 8, tzinfo=UTC), "Events": 12,
     "Tags": ["a", "b"]},
    {"Host": "cmp1", "Service": None, "Last seen": None, "Events": 3, "Tags": []},
]


def render(fmt: str, selected: tuple[str, ...] = (), fit_width: bool = False) -> str:
    out = io.StringIO()
    emit(ROWS, COLUMNS, fmt=fmt, selected=selected, fit_width=fit_width, out=out)
    return out.getvalue()


def test_csv_parses_back_with_the_csv_module():
    rows = list(csv.DictReader(io.StringIO(render("csv"))))
    assert rows == [
        {"Host": "ctl1", "Service": "keystone", "Last seen": "2026-03-02T08:00:00Z", "Events": "12",
         "Tags": "a, b"},
        {"Host": "cmp1", "Service": "", "Last seen": "", "Events": "3", "Tags": ""},
    ]


@pytest.mark.parametrize("load", [json.loads, yaml.safe_load], ids=["json", "yaml"])
def test_json_and_yaml_load_back_with_types_kept(load):
    loaded = load(render("json" if load is json.loads else "yaml"))
    assert loaded == [
        {"Host": "ctl1", "Service": "keystone", "Last seen": "2026-03-02T08:00:00Z", "Events": 12,
         "Tags": ["a", "b"]},
        {"Host": "cmp1", "Service": None, "Last seen": None, "Events": 3, "Tags": []},
    ]


def test_value_prints_bare_values_without_a_header():
    assert render("value", ("Host", "Events")) == "ctl1 12\ncmp1 3\n"


def test_table_is_boxed_with_a_header():
    lines = render("table", ("Host", "Events")).splitlines()
    assert lines == [
        "+------+--------+",
        "| Host | Events |",
        "+------+--------+",
        "| ctl1 | 12     |",
        "| cmp1 | 3      |",
        "+------+--------+",
    ]


def test_columns_are_picked_in_the_order_given_whatever_their_case():
    assert next(csv.reader(io.StringIO(render("csv", ("events", "HOST"))))) == ["Events", "Host"]


def test_an_unknown_column_is_a_usage_error_naming_the_known_ones():
    with pytest.raises(click.UsageError, match=r"unknown column 'nope' \(columns: Host, Service, Last seen"):
        render("table", ("nope",))


def test_fit_width_wraps_the_widest_cells_to_the_width():
    text = box_table(["Name", "Summary"], [["x", "word " * 40]], width=40)
    assert all(len(line) <= 40 for line in text.splitlines())
    assert "word word" in text and text.count("\n") > 5


def test_without_fit_width_a_row_is_one_line():
    text = box_table(["Name", "Summary"], [["x", "word " * 40]])
    assert text.count("\n") == 5


def test_output_options_give_the_command_its_flags():
    @click.command()
    @output_options
    def listing(fmt: str, columns: tuple[str, ...], fit_width: bool) -> None:
        emit(ROWS, COLUMNS, fmt=fmt, selected=columns, fit_width=fit_width)

    result = CliRunner().invoke(listing, ["-f", "value", "-c", "Host", "-c", "Service"])
    assert result.exit_code == 0 and result.output == "ctl1 keystone\ncmp1 \n"
    bad = CliRunner().invoke(listing, ["-f", "xml"])
    assert bad.exit_code == 2 and "'xml' is not one of" in bad.output
