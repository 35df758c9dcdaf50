"""Moving the test database to a past migration state of some apps, for the tests of data migrations."""

from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate_to(targets: list[tuple[str, str]]) -> Apps:
    """The apps of ``targets`` at those migrations, every other app at its latest migration that needs none of their
    later ones (so the state is one the migrations can reach), and the models of that state."""
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    pinned = {app for app, _ in targets}
    reachable = set().union(*(graph.forwards_plan(target) for target in targets))
    others = []
    for app in sorted({app for app, _ in graph.nodes} - pinned):
        fitting = [node for node in graph.nodes if node[0] == app
                   and all(step[0] not in pinned or step in reachable for step in graph.forwards_plan(node))]
        others.append(max(fitting, key=lambda node: len(graph.forwards_plan(node))) if fitting else (app, None))
    plan_targets = [*others, *targets]
    executor.migrate(plan_targets)
    executor.loader.build_graph()
    return executor.loader.project_state([t for t in plan_targets if t[1] is not None]).apps


def migrate_to_latest() -> None:
    """Every app back at its latest migration."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
