"""Campaign planning (core/campaign_plan.py): sheet checks, rendered rows, length buckets, chunks in storage."""

from __future__ import annotations

import json

import pytest

from core.campaign_plan import by_length, check_sheet, cut, plan_campaign, row_records, write_plan
from core.campaigns import CHUNK_ROWS, Table, chunk_key, columns_key, parse_table
from core.errors import InvalidInput
from core.storage import LocalStorage
from core.textfiles import text_lines

TEMPLATE = "Ad for {product} ({audience}):"


def sheet(n: int) -> Table:
    return Table(["sku", "product", "audience"],
                 [{"sku": f"S{i}", "product": "p" * (n - i), "audience": "all"} for i in range(n)])


@pytest.mark.parametrize("template,id_column,max_rows,param,fragment", [
    (TEMPLATE, None, 2, "rows", "3 rows is over the limit of 2"),
    ("Ad for {colour}", None, 10, "template", "'colour'"),
    (TEMPLATE, "code", 10, "id_column", "'code' is not a column"),
])
def test_check_sheet_names_the_field(template, id_column, max_rows, param, fragment):
    with pytest.raises(InvalidInput) as exc:
        check_sheet(sheet(3), template, id_column, max_rows, "rows")
    assert exc.value.param == param and fragment in exc.value.message


def test_check_sheet_passes_a_good_sheet():
    check_sheet(sheet(3), TEMPLATE, "sku", 3, "input_file")


def test_row_records_render_each_row_in_sheet_order():
    records = row_records(sheet(2), TEMPLATE, "sku")
    assert records == [
        {"index": 0, "id": "S0", "columns": sheet(2).rows[0], "prompt": "Ad for pp (all):"},
        {"index": 1, "id": "S1", "columns": sheet(2).rows[1], "prompt": "Ad for p (all):"},
    ]
    # No id column: the row's index is its id; rows may carry their own settings (batch lines).
    params = [{"seed": 1}, {"seed": 2}]
    records = row_records(sheet(2), TEMPLATE, None, params)
    assert [(r["id"], r["params"]) for r in records] == [("0", {"seed": 1}), ("1", {"seed": 2})]


def test_by_length_orders_prompts_by_bytes_within_each_setting():
    records = [{"index": 0, "prompt": "ccc"}, {"index": 1, "prompt": "绿"},  # 3 bytes, after "a"
               {"index": 2, "prompt": "a", "params": {"seed": 9}}, {"index": 3, "prompt": "bb"}]
    # Rows with their own settings group apart; the plain ones go "bb", then "ccc" and "绿" (3 bytes
    # each, in sheet order).
    assert [r["index"] for r in by_length(records)] == [2, 3, 0, 1]


def test_cut_makes_full_chunks_and_a_last_partial_one():
    assert cut(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert cut([], 2) == []


def test_plan_campaign_chunks_every_row_once_shortest_first():
    table = sheet(CHUNK_ROWS + 3)
    plan = plan_campaign(table, TEMPLATE, "sku")
    assert plan.columns == table.columns and plan.rows == len(table.rows)
    assert [len(c) for c in plan.chunks] == [CHUNK_ROWS, 3]
    flat = [r for c in plan.chunks for r in c]
    assert sorted(r["index"] for r in flat) == list(range(len(table.rows)))
    lengths = [len(r["prompt"]) for r in flat]
    assert lengths == sorted(lengths)


def test_write_plan_puts_each_chunk_and_the_columns_in_storage(tmp_path):
    storage = LocalStorage(tmp_path, "secret-for-tests-0123456789", "http://127.0.0.1")
    plan = plan_campaign(parse_table(b"product,audience\nTea,students\nShoes,runners\n"), TEMPLATE, None)
    write_plan(storage, "cmp_x", plan)
    assert json.loads(storage.get_bytes(columns_key("cmp_x"))) == ["product", "audience"]
    [chunk] = plan.chunks
    stored = [json.loads(line) for line in text_lines(storage.get_bytes(chunk_key("cmp_x", "input", 0)).decode())
              if line]
    assert stored == chunk and {r["prompt"] for r in stored} == {"Ad for Tea (students):", "Ad for Shoes (runners):"}
