"""The generated tables of the docs, each from its one source:
- README.md's Terraform inputs and outputs, from terraform/variables.tf and
  terraform/outputs.tf (terraform-docs style), and docs/vault.md's of the vault
  module, from terraform/modules/vault;
- docs/architecture.md's error names, the functions' environment and the fields
  of the execution input, from statemachine/contract.json (itself generated
  from the functions' code);
- docs/local-aws.md's refusals of AWS that the local AWS applies, from
  scripts/python/local_aws/rules.py.

    python scripts/docs-tables.py --check   fail when a table differs from its source
    python scripts/docs-tables.py --write   rewrite the tables
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
VAULT_MODULE = MODULE / "modules" / "vault"
README = ROOT / "README.md"
VAULT = ROOT / "docs" / "vault.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
LOCAL_AWS = ROOT / "docs" / "local-aws.md"
CONTRACT = ROOT / "statemachine" / "contract.json"


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


def inputs_table(module: Path = MODULE) -> str:
    rows = ["| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    for name, body in _blocks(module / "variables.tf", "variable"):
        required = "default" not in body
        default = "n/a" if required else f"`{_literal(body['default'])}`"
        kind = re.sub(r"\s+", " ", _expression(body.get("type", "any")))
        rows.append(
            f"| `{name}` | {_cell(_text(body.get('description', '')))} | `{_cell(kind)}` | {_cell(default)} "
            f"| {'yes' if required else 'no'} |"
        )
    return "\n".join(rows)


def outputs_table(module: Path = MODULE) -> str:
    rows = ["| Name | Description |", "|---|---|"]
    for name, body in _blocks(module / "outputs.tf", "output"):
        rows.append(f"| `{name}` | {_cell(_text(body.get('description', '')))} |")
    return "\n".join(rows)


def error_table() -> str:
    rows = ["| errorType | Retry | Raised by | Meaning |", "|---|---|---|---|"]
    for error in json.loads(CONTRACT.read_text())["errors"]:
        retry = f"yes ({error['retry_class']})" if error["retry_class"] else "no"
        rows.append(f"| `{error['name']}` | {retry} | {', '.join(error['raised_by'])} | {_cell(error['description'])} |")
    return "\n".join(rows)


def environment_table() -> str:
    functions = json.loads(CONTRACT.read_text())["functions"]
    variables: dict[str, dict] = {}
    for function, entry in functions.items():
        for variable in entry["environment"]:
            row = variables.setdefault(variable["name"], {"read": [], "required": [], "meaning": variable["description"]})
            row["read"].append(function)
            if variable["required"]:
                row["required"].append(function)
    rows = ["| Variable | Read by | Required by | Meaning |", "|---|---|---|---|"]
    for name, row in variables.items():
        others = [f for f in functions if f not in row["read"]]
        read = f"all but {', '.join(others)}" if len(others) < len(row["read"]) else ", ".join(row["read"])
        required = "all that read it" if row["required"] == row["read"] else ", ".join(row["required"]) or "none"
        rows.append(f"| `{name}` | {read} | {required} | {_cell(row['meaning'])} |")
    return "\n".join(rows)


def execution_input_table() -> str:
    rows = ["| Field | Must be | Default (Terraform) | Effect |", "|---|---|---|---|"]
    for field in json.loads(CONTRACT.read_text())["execution_input"]:
        rows.append(f"| `{field['name']}` | {field['expected']} | {field['default']} | {_cell(field['effect'])} |")
    return "\n".join(rows)


def refusals_table() -> str:
    sys.path.insert(0, str(ROOT / "scripts" / "python"))
    from local_aws.rules import RULES

    rows = ["| Setting (1 on, 0 off) | Call | Answer | What AWS documents |", "|---|---|---|---|"]
    for rule in RULES:
        code = f"`{rule.code}`" + ("" if rule.code_documented else " (AWS names no code)")
        rows.append(f"| `{rule.name}` | `{rule.action}` | {rule.status} {code} | "
                    f"\"{_cell(rule.documented)}\" ([source]({rule.source})) |")
    return "\n".join(rows)


def fill(document: str, path: Path, tables: dict[str, str]) -> str:
    for marker, table in tables.items():
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
        if not pattern.search(document):
            raise SystemExit(f"{path.relative_to(ROOT)} has no <!-- {marker}:start/end --> markers")
        document = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), document)
    return document


def wanted() -> dict[Path, str]:
    return {
        README: fill(README.read_text(), README, {"terraform-inputs": inputs_table(), "terraform-outputs": outputs_table()}),
        ARCHITECTURE: fill(ARCHITECTURE.read_text(), ARCHITECTURE,
                           {"error-types": error_table(), "function-environment": environment_table(),
                            "execution-input": execution_input_table()}),
        LOCAL_AWS: fill(LOCAL_AWS.read_text(), LOCAL_AWS, {"aws-refusals": refusals_table()}),
        VAULT: fill(VAULT.read_text(), VAULT, {"vault-inputs": inputs_table(VAULT_MODULE),
                                               "vault-outputs": outputs_table(VAULT_MODULE)}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    args = parser.parse_args()
    stale = []
    for path, text in wanted().items():
        if path.read_text() != text:
            stale.append(str(path.relative_to(ROOT)))
            if args.write:
                path.write_text(text)
    if stale and not args.write:
        print(f"generated tables differ from their sources in {', '.join(stale)};"
              " run: .tools/venv/bin/python scripts/docs-tables.py --write", file=sys.stderr)
        return 1
    print("the docs' generated tables match the module and the contract")
    return 0


if __name__ == "__main__":
    sys.exit(main())
