"""The benchmark scripts' results: rows as JSON beside the markdown table a README quotes."""
import json
import os
from typing import Dict, Sequence, Tuple

from fairseq_signlang.io.writers import atomic_open

Column = Tuple[str, str, str]  # (row key, title, format)


def format_table(rows: Sequence[Dict], columns: Sequence[Column], text_columns: int) -> str:
    """A markdown table of (key, title, format) columns, the first `text_columns` left-aligned."""
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "| " + " | ".join("---" if i < text_columns else "---:" for i in range(len(columns))) + " |"
    body = ["| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def write_results(out: str, rows: Sequence[Dict], columns: Sequence[Column], text_columns: int) -> None:
    """Print the table and write it to {out}/table.md, the rows to {out}/rows.json."""
    table = format_table(rows, columns, text_columns)
    print(table)
    os.makedirs(out, exist_ok=True)
    with atomic_open(os.path.join(out, "table.md")) as f:
        f.write(table + "\n")
    with atomic_open(os.path.join(out, "rows.json")) as f:
        json.dump(rows, f, indent=1)
