"""The README's Terraform inputs and outputs tables, generated from
terraform/variables.tf and terraform/outputs.tf (terraform-docs style).

    python scripts/terraform-docs.py --check   fail when README.md differs
    python scripts/terraform-docs.py --write   rewrite the tables in README.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "terraform"
README = ROOT / "README.md"
SECTIONS = ("inputs", "outputs")


def _text(value: str) -> str:
    """An HCL string as python-hcl2 returns it (`"..."`), unquoted."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def _expression(value: str) -> str:
    """An HCL expression as python-hcl2 returns it (`${...}`), bare."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return value


def _literal(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _expression(value) if value.startswith("${") else json.dumps(_text(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        items = {_text(k): v for k, v in value.items() if k != "__is_block__"}
        return "{ " + ", ".join(f"{k} = {_literal(v)}" for k, v in items.items()) + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"cannot render {value!r}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _blocks(path: Path, kind: str) -> list[tuple[str, dict]]:
    with path.open() as handle:
        parsed = hcl2.load(handle)
    return [(_text(name), body) for block in parsed.get(kind, []) for name, body in block.items()]


def inputs_table() -> str:
    rows = ["| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    for name, body in _blocks(MODULE / "variables.tf", "variable"):
        required = "default" not in body
        default = "n/a" if required else f"`{_literal(body['default'])}`"
        kind = re.sub(r"\s+", " ", _expression(body.get("type", "any")))
        rows.append(
            f"| `{name}` | {_cell(_text(body.get('description', '')))} | `{_cell(kind)}` | {_cell(default)} "
            f"| {'yes' if required else 'no'} |"
        )
    return "\n".join(rows)


def outputs_table() -> str:
    rows = ["| Name | Description |", "|---|---|"]
    for name, body in _blocks(MODULE / "outputs.tf", "output"):
        rows.append(f"| `{name}` | {_cell(_text(body.get('description', '')))} |")
    return "\n".join(rows)


def render(readme: str) -> str:
    tables = {"inputs": inputs_table(), "outputs": outputs_table()}
    for section in SECTIONS:
        pattern = re.compile(rf"(<!-- terraform-{section}:start -->\n).*?(<!-- terraform-{section}:end -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no <!-- terraform-{section}:start/end --> markers")
        readme = pattern.sub(lambda m, t=tables[section]: m.group(1) + t + "\n" + m.group(2), readme)
    return readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    args = parser.parse_args()
    current = README.read_text()
    wanted = render(current)
    if args.write:
        README.write_text(wanted)
        return 0
    if current != wanted:
        print(
            "README.md's Terraform inputs/outputs tables differ from terraform/variables.tf and outputs.tf;"
            " run: .tools/venv/bin/python scripts/terraform-docs.py --write",
            file=sys.stderr,
        )
        return 1
    print("README.md's Terraform inputs and outputs tables match the module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
