"""clamator codegen import --python: reads clamator_protocol.Contract objects (0.1.9:
Contract(service, methods: dict[str, MethodEntry(params_model, result_model | None,
handler_attr)]), Pydantic v2 models) from the user's module and prints, on stdout, one JSON
object: {"contracts": [{"service", "description", "methods": [{"name", "notification",
"params", "result", "description"}]}]}. Run by the Rust importer; the argument is MODULE or
MODULE:ATTR. Every failure is one line on stderr and exit status 2."""
from __future__ import annotations

import importlib
import json
import sys


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(2)


def schema(model, what: str) -> dict:
    try:
        # Validation mode: what the model accepts. by_alias: the wire names (the Python client
        # dumps by alias, servers validate aliases).
        return model.model_json_schema(by_alias=True, mode="validation")
    except Exception as e:  # noqa: BLE001
        fail(f"{what}: cannot produce a JSON Schema: {type(e).__name__}: {e}")
        raise


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: python.py MODULE[:ATTR]")
    spec = sys.argv[1]
    module_name, _, attr = spec.partition(":")
    try:
        from clamator_protocol import Contract, MethodEntry
    except ImportError as e:
        fail(f"clamator_protocol is not importable with this Python ({sys.executable}): {e}")
        raise
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001
        fail(f"cannot import {module_name!r}: {type(e).__name__}: {e}")
        raise
    if attr:
        if not hasattr(module, attr):
            fail(f"module {module_name!r} has no attribute {attr!r}")
        found = [(attr, getattr(module, attr))]
        if not isinstance(found[0][1], Contract):
            fail(f"{spec} is a {type(found[0][1]).__name__}, not a clamator_protocol.Contract")
    else:
        found = [(n, v) for n, v in vars(module).items() if isinstance(v, Contract)]
        if not found:
            fail(f"module {module_name!r} defines no clamator_protocol.Contract")
    contracts = []
    for name, contract in found:
        methods = []
        for method, entry in contract.methods.items():
            if not isinstance(entry, MethodEntry):
                fail(f"{name}.methods[{method!r}] is not a MethodEntry")
            where = f"{contract.service}.{method}"
            params = schema(entry.params_model, f"{where} params ({entry.params_model.__name__})")
            result = None
            if entry.result_model is not None:
                result = schema(entry.result_model, f"{where} result ({entry.result_model.__name__})")
            methods.append({
                "name": method,
                "notification": entry.result_model is None,
                "params": params,
                "result": result,
                "handler_attr": entry.handler_attr,
            })
        contracts.append({"service": contract.service, "variable": name, "methods": methods})
    json.dump({"contracts": contracts}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
