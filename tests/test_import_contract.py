"""The import contract (pyproject.toml [tool.importlinter]) holds, and would catch an edge back up.

`bin/test` runs `lint-imports` before pytest; these tests check the same contracts from inside
pytest, and that each one breaks on the kind of import it exists to forbid — one written inside a
function, as the lazy imports that used to hide the cycles were.
"""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import grimp
import pytest
from importlinter import configuration
from importlinter.application import use_cases
from importlinter.domain.contract import registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def options():
    configuration.configure()
    found = use_cases.read_user_options(config_filename=str(ROOT / "pyproject.toml"))
    use_cases._register_contract_types(found)
    return found


@pytest.fixture(scope="module")
def graph(options):
    return grimp.build_graph(
        *options.session_options["root_packages"],
        exclude_type_checking_imports=use_cases._get_exclude_type_checking_imports(options),
        cache_dir=None,
    )


def check(options, graph, contract_id: str, *extra: tuple[str, str]) -> bool:
    [contract_options] = [c for c in options.contracts_options if c["id"] == contract_id]
    contract = registry.get_contract_class(contract_options["type"])(
        name=contract_options["name"],
        session_options=options.session_options,
        contract_options=contract_options,
    )
    copy = deepcopy(graph)  # as lint-imports does: a contract may change the graph it checks
    for importer, imported in extra:
        copy.add_import(importer=importer, imported=imported, line_number=1, line_contents="    import it")
    return contract.check(copy, verbose=False).kept


@pytest.mark.parametrize("contract_id", ["layers", "no-bench", "acyclic"])
def test_the_code_keeps_the_contract(options, graph, contract_id):
    assert check(options, graph, contract_id)


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("contacts.ingest", "journeys.services"),  # the ground reaching up for exit rules
        ("emails.services", "journeys.models"),  # a send reading a run
        ("journeys.services", "integrations.lifecycle"),  # a run announcing itself directly
        ("contacts.admin", "hogsend.admin"),  # an app importing the wiring
    ],
)
def test_an_import_up_the_layers_breaks_it(options, graph, importer, imported):
    assert not check(options, graph, "layers", (importer, imported))


def test_the_product_importing_bench_breaks_it(options, graph):
    assert not check(options, graph, "no-bench", ("journeys.runner", "bench.journeys"))


def test_a_cycle_inside_an_app_breaks_it(options, graph):
    # contacts.tasks and contacts.import_jobs once imported each other.
    assert not check(options, graph, "acyclic", ("contacts.outbox", "contacts.ingest"))
