"""The shared contract every catalog backend passes (fsspec-style).

A backend adopts it in three lines::

    class TestMyCatalog(CatalogContract):
        @pytest.fixture
        def catalog(self, tmp_path):
            yield MyCatalog(...)      # a fresh, empty catalog

SQL backends adopt `SqlCatalogContract` instead and supply a ``catalog_url`` fixture
(a URL of a fresh, empty database); it adds migration and multi-process tests.
"""

from __future__ import annotations

import itertools
import multiprocessing
import subprocess
import sys
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from lodestore.catalog.base import Catalog
from lodestore.catalog.migrate import HEAD
from lodestore.catalog.records import LATEST, ManifestEntry
from lodestore.errors import (
    ConflictError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
    StoreFormatError,
)

from .contract_data import BAD_NAMES, a_run, entries, manifest_digest, new_version  # noqa: F401  (re-exported)
from .contract_queries import DraftContract, QueryContract


def _nothing_left(cat: Catalog) -> None:
    assert cat.list_projects() == []
    assert cat.referenced_digests() == set()


class CatalogContract(QueryContract, DraftContract):
    """Behaviour every catalog must have. Needs a ``catalog`` fixture: a fresh catalog."""

    # --- versions -----------------------------------------------------------------------
    def test_first_commit_is_v0_and_latest(self, catalog: Catalog):
        res = catalog.commit_version(
            new_version("a", description="first", metadata={"rows": 2}, tags=["raw"]))
        v = res.version
        assert res.created
        assert (v.project, v.name, v.type, v.index, v.version) == ("zoo", "animals", "dataset", 0, "v0")
        assert v.qualified_name == "zoo/animals:v0"
        assert v.aliases == (LATEST,)
        assert v.tags == ("raw",)
        assert v.description == "first" and v.metadata == {"rows": 2}
        assert v.file_count == 2 and v.size == sum(e.size for e in entries("a.txt", "b/c.txt"))
        assert v.state == "live" and v.created_by_run is None
        assert v.created_at.tzinfo is not None
        assert catalog.get_version("zoo", "animals") == v
        assert catalog.get_version("zoo", "animals", "v0") == v
        assert catalog.get_version("zoo", "animals", "latest") == v
        assert catalog.get_version_by_id(v.id) == v

    def test_indexes_increase_and_are_never_reused(self, catalog: Catalog):
        got = [catalog.commit_version(new_version(c)).version.index for c in "abc"]
        assert got == [0, 1, 2]
        v2 = catalog.get_version("zoo", "animals", "v2")
        catalog.delete_version(v2.id)
        assert catalog.commit_version(new_version("d")).version.index == 3
        v3 = catalog.get_version("zoo", "animals", "v3")
        catalog.delete_version(v3.id)
        catalog.purge_version(v3.id)
        assert catalog.commit_version(new_version("e")).version.index == 4
        assert [v.version for v in catalog.list_versions("zoo", "animals")] == ["v0", "v1", "v4"]
        assert [v.version for v in catalog.list_versions("zoo", "animals", include_deleted=True)] == [
            "v0", "v1", "v2", "v4"]

    def test_identical_content_returns_existing_and_adds_aliases(self, catalog: Catalog):
        first = catalog.commit_version(new_version("a")).version
        catalog.commit_version(new_version("b"))
        again = catalog.commit_version(new_version("a", aliases=["best"]))
        assert not again.created
        assert again.version.id == first.id and again.version.index == 0
        assert again.version.aliases == ("best",)  # latest stays on v1: nothing new was logged
        assert catalog.get_version("zoo", "animals").index == 1
        assert len(catalog.list_versions("zoo", "animals")) == 2

    def test_identical_content_of_a_deleted_version_is_a_new_version(self, catalog: Catalog):
        v0 = catalog.commit_version(new_version("a")).version
        catalog.delete_version(v0.id)
        res = catalog.commit_version(new_version("a"))
        assert res.created and res.version.index == 1

    def test_latest_moves_and_every_move_is_recorded(self, catalog: Catalog):
        catalog.create_run(a_run("r1"))
        catalog.commit_version(new_version("a", run_id="r1"))
        catalog.commit_version(new_version("b"))
        assert catalog.get_version("zoo", "animals").index == 1
        assert catalog.get_version("zoo", "animals", "v0").aliases == ()
        hist = [(e.alias, e.from_index, e.to_index, e.run_id)
                for e in catalog.alias_history("zoo", "animals")]
        assert hist == [("latest", None, 0, "r1"), ("latest", 0, 1, None)]
        assert all(e.at.tzinfo is not None for e in catalog.alias_history("zoo", "animals"))

    def test_custom_alias_is_unique_and_moves_with_history(self, catalog: Catalog):
        catalog.create_run(a_run("r1"))
        catalog.create_run(a_run("r2"))
        catalog.commit_version(new_version("a", aliases=["best", "prod"], run_id="r1"))
        catalog.commit_version(new_version("b", aliases=["best"], run_id="r2"))
        assert catalog.get_version("zoo", "animals", "best").index == 1
        assert catalog.get_version("zoo", "animals", "prod").index == 0
        assert catalog.get_version("zoo", "animals", "v1").aliases == ("latest", "best")
        catalog.set_alias("zoo", "animals", "best", 0, run_id="r1")
        catalog.set_alias("zoo", "animals", "best", 0, run_id="r1")  # already there: no event
        assert catalog.get_version("zoo", "animals", "v0").aliases == ("best", "prod")
        best = [(e.from_index, e.to_index, e.run_id) for e in catalog.alias_history("zoo", "animals")
                if e.alias == "best"]
        assert best == [(None, 0, "r1"), (0, 1, "r2"), (1, 0, "r1")]

    def test_set_alias_checks_its_arguments(self, catalog: Catalog):
        catalog.commit_version(new_version("a"))
        with pytest.raises(NotFoundError, match=r"no version or alias 'v7'; versions: v0; aliases: latest"):
            catalog.set_alias("zoo", "animals", "best", 7)
        with pytest.raises(InvalidNameError):
            catalog.set_alias("zoo", "animals", LATEST, 0)
        with pytest.raises(InvalidNameError):
            catalog.set_alias("zoo", "animals", "v3", 0)
        with pytest.raises(NotFoundError, match="run 'nope'"):
            catalog.set_alias("zoo", "animals", "best", 0, run_id="nope")
        assert catalog.get_version("zoo", "animals").aliases == (LATEST,)

    def test_remove_alias(self, catalog: Catalog):
        catalog.commit_version(new_version("a", aliases=["best"]))
        catalog.remove_alias("zoo", "animals", "best")
        assert catalog.get_version("zoo", "animals", "v0").aliases == (LATEST,)
        last = catalog.alias_history("zoo", "animals")[-1]
        assert (last.alias, last.from_index, last.to_index) == ("best", 0, None)
        with pytest.raises(NotFoundError, match=r"has no alias 'best'; aliases: latest"):
            catalog.remove_alias("zoo", "animals", "best")
        with pytest.raises(ConflictError):
            catalog.remove_alias("zoo", "animals", LATEST)

    def test_update_version_fields(self, catalog: Catalog):
        v = catalog.commit_version(new_version("a", description="d", metadata={"a": 1}, tags=["x"])).version
        u = catalog.update_version(v.id, metadata={"b": [1, 2]}, tags=["y", "z", "y"])
        assert (u.description, u.metadata, u.tags) == ("d", {"b": [1, 2]}, ("y", "z"))
        u = catalog.update_version(v.id, description="new")
        assert (u.description, u.metadata, u.tags) == ("new", {"b": [1, 2]}, ("y", "z"))
        u = catalog.update_version(v.id, description=None, tags=[])
        assert (u.description, u.tags) == (None, ())
        assert catalog.get_version_by_id(v.id) == u
        assert (u.digest, u.file_count, u.index) == (v.digest, v.file_count, v.index)  # files are immutable

    def test_update_version_aliases_is_the_full_set(self, catalog: Catalog):
        catalog.create_run(a_run("r1"))
        v0 = catalog.commit_version(new_version("a", aliases=["old", "best"])).version
        v1 = catalog.commit_version(new_version("b")).version
        u = catalog.update_version(v1.id, aliases=["best", "latest", "new"], run_id="r1")
        assert u.aliases == ("latest", "best", "new")
        assert catalog.get_version_by_id(v0.id).aliases == ("old",)
        u = catalog.update_version(v1.id, aliases=[])
        assert u.aliases == (LATEST,)  # latest is the catalog's, not the caller's
        moves = [(e.alias, e.from_index, e.to_index, e.run_id)
                 for e in catalog.alias_history("zoo", "animals")]
        assert ("best", 0, 1, "r1") in moves and ("new", None, 1, "r1") in moves
        assert moves[-2:] == [("best", 1, None, None), ("new", 1, None, None)]

    def test_update_version_applies_changes_not_whole_values(self, catalog: Catalog):
        """save() sends what changed since load; edits made meanwhile by others survive."""
        v0 = catalog.commit_version(new_version("a", metadata={"source": "shelter", "n": 3},
                                                tags=["pets", "raw"], aliases=["best"])).version
        catalog.commit_version(new_version("b"))
        with pytest.raises(InvalidInputError, match="not both"):
            catalog.update_version(v0.id, tags=["a"], add_tags=["b"])
        with pytest.raises(InvalidInputError, match="not both"):
            catalog.update_version(v0.id, metadata={}, unset_metadata=["n"])
        with pytest.raises(InvalidInputError, match="not both"):
            catalog.update_version(v0.id, aliases=[], remove_aliases=["best"])
        u = catalog.update_version(v0.id, add_tags=["raw", "new"], remove_tags=["absent"],
                                   set_metadata={"k": [1]}, unset_metadata=["absent", "n"],
                                   add_aliases=["latest", "x"], remove_aliases=["nope"])
        assert sorted(u.tags) == ["new", "pets", "raw"]
        assert u.metadata == {"source": "shelter", "k": [1]}
        assert u.aliases == ("best", "x")  # latest stays with the newest version
        assert catalog.get_version_by_id(v0.id) == u

    def test_update_version_refuses_bad_input(self, catalog: Catalog):
        v = catalog.commit_version(new_version("a")).version
        with pytest.raises(InvalidNameError):
            catalog.update_version(v.id, aliases=["v2"])
        with pytest.raises(InvalidNameError):
            catalog.update_version(v.id, tags=["a/b"])
        with pytest.raises(InvalidInputError):
            catalog.update_version(v.id, metadata={"x": object()})
        with pytest.raises(NotFoundError):
            catalog.update_version(v.id + 1000, description="x")
        assert catalog.get_version_by_id(v.id) == v

    def test_type_mismatch_is_a_conflict(self, catalog: Catalog):
        catalog.commit_version(new_version("a", type="dataset"))
        with pytest.raises(ConflictError, match="has type 'dataset', not 'model'"):
            catalog.commit_version(new_version("b", type="model"))
        assert len(catalog.list_versions("zoo", "animals")) == 1

    @pytest.mark.parametrize("bad", BAD_NAMES)
    def test_invalid_names_are_refused(self, catalog: Catalog, bad: str):
        for kw in ({"project": bad}, {"name": bad}, {"type": bad}, {"aliases": [bad]}, {"tags": [bad]}):
            with pytest.raises(InvalidNameError):
                catalog.commit_version(new_version("a", **kw))
        with pytest.raises(InvalidNameError):
            catalog.commit_version(new_version("a", aliases=["v3"]))
        with pytest.raises(InvalidNameError):
            catalog.create_run(a_run(project=bad))
        assert catalog.list_projects() == []

    def test_not_found_messages_list_what_exists(self, catalog: Catalog):
        catalog.commit_version(new_version("a"))
        catalog.commit_version(new_version("b", aliases=["best"]))
        catalog.commit_version(new_version("c", name="plants"))
        catalog.commit_version(new_version("c", project="farm", name="cows"))
        with pytest.raises(NotFoundError) as e:
            catalog.get_version("zoo", "animals", "v9")
        assert str(e.value) == ("zoo/animals has no version or alias 'v9'; "
                                "versions: v0, v1; aliases: latest, best")
        with pytest.raises(NotFoundError, match="no version or alias 'worst'"):
            catalog.get_version("zoo", "animals", "worst")
        with pytest.raises(NotFoundError,
                           match=r"project 'zoo' has no artifact 'animal'.*artifacts: animals, plants"):
            catalog.get_version("zoo", "animal")
        with pytest.raises(NotFoundError, match=r"project 'zo0' does not exist.*projects: farm, zoo"):
            catalog.list_versions("zo0", "animals")
        with pytest.raises(LookupError):  # NotFoundError is also a LookupError
            catalog.get_version_by_id(12345)

    def test_deleted_versions_are_hidden_unless_asked(self, catalog: Catalog):
        catalog.commit_version(new_version("a"))
        v1 = catalog.commit_version(new_version("b", aliases=["best"])).version
        d = catalog.delete_version(v1.id)
        assert d.state == "deleted" and d.deleted_at is not None and d.aliases == ()
        assert catalog.delete_version(v1.id) == d  # idempotent
        with pytest.raises(NotFoundError,
                           match=r"zoo/animals:v1 is soft-deleted.*versions: v0; aliases: latest"):
            catalog.get_version("zoo", "animals", "v1")
        assert catalog.get_version("zoo", "animals", "v1", include_deleted=True).state == "deleted"
        assert catalog.get_version("zoo", "animals").index == 0  # latest fell back to v0
        moves = [(e.alias, e.from_index, e.to_index) for e in catalog.alias_history("zoo", "animals")][-2:]
        assert moves == [("best", 1, None), ("latest", 1, 0)]
        with pytest.raises(ConflictError):
            catalog.update_version(v1.id, aliases=["best"])
        with pytest.raises(NotFoundError):
            catalog.set_alias("zoo", "animals", "best", 1)

    def test_deleting_the_only_version_removes_latest(self, catalog: Catalog):
        v0 = catalog.commit_version(new_version("a")).version
        catalog.delete_version(v0.id)
        with pytest.raises(NotFoundError,
                           match=r"no version or alias 'latest'; versions: none; aliases: none"):
            catalog.get_version("zoo", "animals")
        assert catalog.list_artifacts()[0].version_count == 0
        assert catalog.commit_version(new_version("b")).version.aliases == (LATEST,)

    def test_purge_requires_delete_and_keeps_history(self, catalog: Catalog):
        catalog.create_run(a_run("r1"))
        v0 = catalog.commit_version(new_version("a", run_id="r1")).version
        with pytest.raises(ConflictError):
            catalog.purge_version(v0.id)
        catalog.record_use("r1", v0.id)
        catalog.delete_version(v0.id)
        catalog.purge_version(v0.id)
        with pytest.raises(NotFoundError):
            catalog.get_version_by_id(v0.id)
        assert catalog.run_outputs("r1") == [] and catalog.run_inputs("r1") == []
        assert catalog.referenced_digests() == set()
        moves = [(e.from_index, e.to_index) for e in catalog.alias_history("zoo", "animals")]
        assert moves == [(None, 0), (0, None)]

    def test_version_state(self, catalog: Catalog):
        v = catalog.commit_version(new_version("a")).version
        assert catalog.set_version_state(v.id, "broken").state == "broken"
        assert catalog.get_version("zoo", "animals").state == "broken"
        assert catalog.set_version_state(v.id, "live").state == "live"
        with pytest.raises(InvalidInputError):
            catalog.set_version_state(v.id, "deleted")
        catalog.delete_version(v.id)
        with pytest.raises(ConflictError):
            catalog.set_version_state(v.id, "live")

    def test_listing(self, catalog: Catalog):
        catalog.commit_version(new_version("a"))
        v1 = catalog.commit_version(new_version("b")).version
        catalog.commit_version(new_version("c", name="resnet", type="model"))
        catalog.commit_version(new_version("c", project="farm", name="cows"))
        catalog.delete_version(v1.id)
        assert catalog.list_projects() == ["farm", "zoo"]
        assert catalog.artifact_types() == ["dataset", "model"]
        assert catalog.artifact_types("farm") == ["dataset"]
        arts = catalog.list_artifacts()
        assert [(a.project, a.name) for a in arts] == [
            ("farm", "cows"), ("zoo", "animals"), ("zoo", "resnet")]
        animals = arts[1]
        assert (animals.type, animals.version_count, animals.latest_index) == ("dataset", 1, 0)
        assert animals.total_size == catalog.get_version("zoo", "animals", "v0").size
        assert [a.name for a in catalog.list_artifacts(project="zoo", type="model")] == ["resnet"]
        assert [a.name for a in catalog.list_artifacts(name="cows")] == ["cows"]
        assert catalog.list_artifacts(project="nope") == []

    def test_entries_are_sorted_and_looked_up(self, catalog: Catalog):
        items = entries("b.txt", "a/z.txt", "a.txt", "a/b/c.txt", "B.txt", "é.txt")
        shuffled = [items[i] for i in (3, 0, 5, 1, 4, 2)]
        v = catalog.commit_version(new_version(items=shuffled)).version
        assert list(catalog.iter_entries(v.id)) == sorted(items, key=lambda e: e.path)
        assert catalog.get_entry(v.id, "a/z.txt") == next(e for e in items if e.path == "a/z.txt")
        with pytest.raises(NotFoundError,
                           match=r"zoo/animals:v0 has no file 'a/x.txt'; did you mean: a/z.txt"):
            catalog.get_entry(v.id, "a/x.txt")
        with pytest.raises(NotFoundError):
            catalog.iter_entries(v.id + 1000)

    def test_empty_version(self, catalog: Catalog):
        v = catalog.commit_version(new_version(items=[])).version
        assert (v.file_count, v.size) == (0, 0)
        assert list(catalog.iter_entries(v.id)) == []

    def test_large_manifest_commits_and_streams_in_order(self, catalog: Catalog):
        """A 20,000-file manifest in one commit (its time is the bench's business: a bound
        here only measured how loaded the machine was)."""
        n = 20_000
        items = [ManifestEntry(f"img/{i:06d}.png", f"blake3:{i:064x}", 1000 + i) for i in range(n)]
        v = catalog.commit_version(new_version(items=items)).version
        assert v.file_count == n and v.size == sum(e.size for e in items)
        assert list(catalog.iter_entries(v.id)) == items
        assert catalog.get_entry(v.id, "img/012345.png").size == 1000 + 12345

    def test_referenced_digests(self, catalog: Catalog):
        keep = entries("a", "b", salt="keep")
        gone = entries("c", salt="gone")
        catalog.commit_version(new_version(items=keep))
        v1 = catalog.commit_version(new_version(items=keep[:1] + gone)).version
        catalog.delete_version(v1.id)
        every = {e.digest for e in keep + gone}
        assert catalog.referenced_digests() == every
        assert catalog.referenced_digests(include_deleted=False) == {e.digest for e in keep}

    def test_failed_commit_leaves_nothing_behind(self, catalog: Catalog):
        dup = entries("a", "b") + entries("b", salt="other")
        with pytest.raises((ConflictError, ValueError), match=r"'?b'?"):
            catalog.commit_version(new_version(items=dup, aliases=["best"], tags=["t"]))
        _nothing_left(catalog)
        # and on an existing artifact: no version, alias move or index consumed
        catalog.commit_version(new_version("a"))
        before = (catalog.list_versions("zoo", "animals"), catalog.alias_history("zoo", "animals"))
        with pytest.raises((ConflictError, ValueError)):
            catalog.commit_version(new_version(items=dup, aliases=["best"]))
        assert (catalog.list_versions("zoo", "animals"), catalog.alias_history("zoo", "animals")) == before
        assert catalog.commit_version(new_version("b")).version.index == 1

    def test_a_commit_whose_bytes_fail_to_store_leaves_nothing(self, catalog: Catalog):
        """`stored` raising inside the transaction (a copy's last bytes failed to commit):
        its error is raised and nothing of the version is there, no index consumed."""
        def failed() -> None:
            raise OSError("the store's last batch did not commit")

        with pytest.raises(OSError, match="last batch"):
            catalog.commit_version(new_version("a", aliases=["best"], tags=["t"]), stored=failed)
        _nothing_left(catalog)
        calls: list[int] = []
        made = catalog.commit_version(new_version("a"), stored=lambda: calls.append(1))
        again = catalog.commit_version(new_version("a", aliases=["best"]), stored=lambda: calls.append(2))
        assert made.version.index == 0 and not again.created and calls == [1, 2]  # waited for, both ways

    def test_commit_with_unknown_run_changes_nothing(self, catalog: Catalog):
        with pytest.raises(NotFoundError, match="run 'ghost'"):
            catalog.commit_version(new_version("a", run_id="ghost"))
        _nothing_left(catalog)

    def test_bad_metadata_or_ttl_is_refused(self, catalog: Catalog):
        with pytest.raises(InvalidInputError):
            catalog.commit_version(new_version("a", metadata={"when": datetime.now(UTC)}))
        with pytest.raises(InvalidInputError):
            catalog.commit_version(new_version("a", ttl_seconds=-5))
        assert catalog.commit_version(new_version("a", ttl_seconds=3600)).version.ttl_seconds == 3600

    def test_threads_share_one_catalog(self, catalog: Catalog):
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(5):
                    catalog.commit_version(new_version(f"{t}-{i}"))
                    catalog.get_version("zoo", "animals")
            except BaseException as exc:  # reported below, with the thread's traceback lost
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert [v.index for v in catalog.list_versions("zoo", "animals")] == list(range(30))

    # --- runs ---------------------------------------------------------------------------
    def test_run_create_get_update(self, catalog: Catalog):
        run = a_run("r1", name="train", group="sweep", job_type="train", tags=("a", "b"),
                    config={"lr": 0.1}, host="box", pid=42)
        got = catalog.create_run(run)
        assert got == run
        assert catalog.get_run("r1") == run
        assert catalog.list_projects() == ["zoo"]
        done = datetime.now(UTC) + timedelta(seconds=5)
        u = catalog.update_run("r1", state="finished", exit_code=0, finished_at=done, summary={"acc": 0.9},
                               tags=["c"], notes="ok", heartbeat_at=done)
        assert (u.state, u.exit_code, u.finished_at, u.summary, u.tags, u.notes) == (
            "finished", 0, done, {"acc": 0.9}, ("c",), "ok")
        assert u.config == {"lr": 0.1} and u.name == "train"
        assert catalog.get_run("r1") == u

    def test_run_errors(self, catalog: Catalog):
        catalog.create_run(a_run("r1"))
        with pytest.raises(ConflictError, match="r1"):
            catalog.create_run(a_run("r1", project="other"))
        assert catalog.list_projects() == ["zoo"]
        with pytest.raises(NotFoundError, match=r"run 'r2' does not exist.*r1"):
            catalog.get_run("r2")
        with pytest.raises(NotFoundError):
            catalog.update_run("r2", state="failed")
        with pytest.raises(InvalidInputError):
            catalog.update_run("r1", id="r3")
        with pytest.raises(InvalidInputError):
            catalog.update_run("r1", project="elsewhere")
        with pytest.raises(InvalidInputError):
            catalog.update_run("r1", state="exploded")
        with pytest.raises(InvalidInputError):
            catalog.update_run("r1", finished_at=datetime.now())  # naive: whose clock?
        with pytest.raises(InvalidInputError):
            catalog.create_run(a_run("r4", created_at=datetime.now()))
        assert catalog.get_run("r1").state == "running"

    def test_lineage(self, catalog: Catalog):
        catalog.create_run(a_run("prep"))
        catalog.create_run(a_run("train"))
        data = catalog.commit_version(new_version("a", run_id="prep")).version
        assert data.created_by_run == "prep"
        assert [v.id for v in catalog.run_outputs("prep")] == [data.id]
        again = catalog.commit_version(new_version("a", run_id="train"))  # same content, logged by train
        assert not again.created and again.version.created_by_run == "prep"
        assert [v.id for v in catalog.run_outputs("train")] == [data.id]
        model = catalog.commit_version(new_version("m", name="net", type="model")).version
        catalog.record_output("train", model.id)
        catalog.record_output("train", model.id)  # idempotent
        catalog.record_use("train", data.id)
        catalog.record_use("train", data.id)
        assert [v.id for v in catalog.run_inputs("train")] == [data.id]
        assert [v.id for v in catalog.run_outputs("train")] == [data.id, model.id]
        assert [r.id for r in catalog.version_users(data.id)] == ["train"]
        assert catalog.version_users(model.id) == []
        assert catalog.run_inputs("prep") == []
        with pytest.raises(NotFoundError):
            catalog.record_use("ghost", data.id)
        with pytest.raises(NotFoundError):
            catalog.record_use("train", 999_999)
        with pytest.raises(NotFoundError):
            catalog.run_inputs("ghost")
        with pytest.raises(NotFoundError):
            catalog.version_users(999_999)

    def test_list_runs(self, catalog: Catalog):
        t = datetime(2024, 1, 1, tzinfo=UTC)
        catalog.create_run(a_run("b", created_at=t + timedelta(seconds=2)))
        catalog.create_run(a_run("a", created_at=t + timedelta(seconds=1)))
        catalog.create_run(a_run("c", project="farm", created_at=t))
        assert [r.id for r in catalog.list_runs()] == ["c", "a", "b"]
        assert [r.id for r in catalog.list_runs("zoo")] == ["a", "b"]
        assert catalog.list_runs("nope") == []

    def test_run_history(self, catalog: Catalog):
        catalog.create_run(a_run("r1"))
        catalog.append_history("r1", [(0, {"loss": 1.0}), (1, {"loss": 0.5})])
        catalog.append_history("r1", [(1, {"acc": 0.7})])
        rows = catalog.run_history("r1")
        assert [(r.step, r.data) for r in rows] == [(0, {"loss": 1.0}), (1, {"loss": 0.5}), (1, {"acc": 0.7})]
        with pytest.raises(InvalidInputError):
            catalog.append_history("r1", [("x", {})])
        with pytest.raises(NotFoundError):
            catalog.append_history("ghost", [(0, {})])

    # --- copies from another catalog (push, pull, import: sdk/transfer.py) ---------------
    def test_commit_of_a_copied_version_keeps_its_time_and_brings_its_run(self, catalog: Catalog):
        made = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        producer = a_run("trainer", config={"lr": 0.1}, state="finished", created_at=made)
        v = catalog.commit_version(new_version("a", created_at=made, run=producer)).version
        assert v.created_at == made and v.created_by_run == "trainer"
        assert catalog.get_run("trainer").config == {"lr": 0.1}
        assert [o.id for o in catalog.run_outputs("trainer")] == [v.id]
        with pytest.raises(InvalidInputError):  # a run id other than the run's own
            catalog.commit_version(new_version("b", run=producer, run_id="someone-else"))
        with pytest.raises(InvalidInputError):
            catalog.commit_version(new_version("c", created_at=datetime(2024, 5, 1)))  # naive

    def test_import_runs_creates_updates_and_links_once(self, catalog: Catalog):
        v0 = catalog.commit_version(new_version("a")).version
        v1 = catalog.commit_version(new_version("b")).version
        trainer, evaluator = a_run("trainer"), a_run("evaluator", summary={"acc": 0.5})
        links = [("trainer", "input", v0.id), ("trainer", "output", v1.id), ("evaluator", "input", v1.id)]
        assert catalog.import_runs([trainer, evaluator], links) == (2, 3)
        assert catalog.import_runs([trainer, evaluator], links) == (0, 0)  # twice changes nothing
        assert [u.id for u in catalog.version_users(v1.id)] == ["evaluator"]
        assert [i.id for i in catalog.run_inputs("trainer")] == [v0.id]
        finished = a_run("evaluator", summary={"acc": 0.9}, state="finished")
        assert catalog.import_runs([finished], []) == (1, 0)
        assert (catalog.get_run("evaluator").summary, catalog.get_run("evaluator").state) == ({"acc": 0.9}, "finished")
        with pytest.raises(NotFoundError):
            catalog.import_runs([], [("ghost", "input", v0.id)])
        with pytest.raises(InvalidInputError):
            catalog.import_runs([], [("trainer", "sideways", v0.id)])


# --- SQL backends ------------------------------------------------------------------------

def _commit_many(cat, worker: int, count: int) -> list[int]:
    """Commit `count` distinct versions of zoo/animals; their indexes."""
    return [cat.commit_version(new_version(f"w{worker}-{i}")).version.index for i in range(count)]


def _move_aliases(cat, worker: int, count: int) -> None:
    """Point aliases a0..a{count-1} of zoo/animals at versions: every worker races every
    first insert of an alias, then every move."""
    for i in range(count):
        cat.set_alias("zoo", "animals", f"a{i}", (worker + i) % 2)


def _open_one_draft(cat, worker: int, count: int) -> list[int]:
    """The first upsert of one draft, from every worker at once: the draft ids seen."""
    return [cat.open_draft("zoo", "corpus", "dataset", f"group-{i}", ttl_seconds=3600).id for i in range(count)]


_JOBS = {"commit": _commit_many, "aliases": _move_aliases, "draft": _open_one_draft}


def _worker(job: str, url: str, worker: int, count: int, start, queue) -> None:
    """Run in a child process: open the catalog, wait for every worker, do `job`."""
    from lodestore.catalog.sql import SqlCatalog

    try:
        cat = SqlCatalog(url)
        start.wait(timeout=60)
        result = _JOBS[job](cat, worker, count)
        cat.close()
        queue.put(("ok", result))
    except BaseException:
        queue.put(("error", traceback.format_exc()))


def _run_in_processes(url: str, workers: int, count: int, job: str = "commit") -> list:
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    queue = ctx.Queue()
    start = ctx.Barrier(workers)
    procs = [ctx.Process(target=_worker, args=(job, url, w, count, start, queue)) for w in range(workers)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for status, r in results if status != "ok"]
    assert not errors, f"{len(errors)} of {workers} workers failed; the first:\n{errors[0]}"
    return [r for _, r in results]


class SqlCatalogContract(CatalogContract):
    """The contract plus what a SQL catalog owes: migrations and multi-process safety.
    Needs a ``catalog_url`` fixture: the URL of a fresh, empty database."""

    #: Does opening a catalog with an older schema migrate it (dialect.upgrades_on_open)?
    upgrades_on_open = True

    def test_a_version_is_visible_only_once_its_bytes_are_stored(self, catalog, catalog_url):
        """Until `stored` returns, another connection sees no trace of the version (its
        transaction is open); after, the version."""
        from lodestore.catalog.sql import SqlCatalog

        other = SqlCatalog(catalog_url)
        seen: list[list[int]] = []

        def stored() -> None:
            try:
                seen.append([v.index for v in other.list_versions("zoo", "animals")])
            except NotFoundError:
                seen.append([])

        catalog.commit_version(new_version("a"), stored=stored)
        assert seen == [[]]
        assert [v.index for v in other.list_versions("zoo", "animals")] == [0]
        other.close()

    @pytest.fixture
    def catalog(self, catalog_url):
        from lodestore.catalog.sql import SqlCatalog

        cat = SqlCatalog(catalog_url)
        yield cat
        cat.close()

    @staticmethod
    def _revision(url: str) -> list[str]:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        finally:
            engine.dispose()

    @staticmethod
    def _assert_schema_matches_metadata(url: str) -> None:
        """Every table of schema.py and nothing else, with the columns, types and indexes
        alembic's autogenerate compares."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from lodestore.catalog.schema import metadata

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) == set(metadata.tables) | {"alembic_version"}
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
        finally:
            engine.dispose()
        assert diff == [], "the database and schema.py disagree:\n" + "\n".join(map(str, diff))

    def test_fresh_database_is_created_at_head_matching_schema(self, catalog, catalog_url):
        assert self._revision(catalog_url) == [HEAD]
        self._assert_schema_matches_metadata(catalog_url)

    def test_migrations_from_empty_match_the_metadata_built_schema(self, catalog_url):
        """A new database is built from schema.py (no alembic); every older database is
        upgraded by the migrations: both must end at the same schema."""
        from lodestore.catalog.engine import create_engines
        from lodestore.catalog.migrate import ensure_schema

        engine, read_engine, write_engine = create_engines(catalog_url)
        try:
            ensure_schema(read_engine, write_engine, migrate_empty=True)
        finally:
            engine.dispose()
        assert self._revision(catalog_url) == [HEAD]
        self._assert_schema_matches_metadata(catalog_url)

    def test_new_catalog_is_built_without_importing_alembic(self, catalog_url):
        code = (
            "import sys; from lodestore.catalog.sql import SqlCatalog; "
            f"SqlCatalog({catalog_url!r}).close(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]"
        assert self._revision(catalog_url) == [HEAD]

    def test_reopening_an_up_to_date_catalog_does_not_migrate(self, catalog, catalog_url, monkeypatch):
        import alembic.command

        from lodestore.catalog.sql import SqlCatalog

        catalog.commit_version(new_version("a"))

        def fail(*a, **k):
            raise AssertionError("migrated an up-to-date catalog")

        monkeypatch.setattr(alembic.command, "upgrade", fail)
        t0 = time.perf_counter()
        again = SqlCatalog(catalog_url)
        elapsed = time.perf_counter() - t0
        assert again.get_version("zoo", "animals").index == 0
        again.close()
        assert elapsed < 0.5  # a few ms really; generous for loaded CI machines

    def test_catalog_from_the_future_is_refused(self, catalog, catalog_url):
        from lodestore.catalog.sql import SqlCatalog

        engine = create_engine(catalog_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        engine.dispose()
        with pytest.raises(StoreFormatError, match=r"9999_from_the_future.*upgrade lodestore"):
            SqlCatalog(catalog_url)

    def test_processes_opening_a_new_database_at_once(self, catalog_url):
        results = _run_in_processes(catalog_url, workers=3, count=1)
        assert sorted(i for r in results for i in r) == [0, 1, 2]
        assert self._revision(catalog_url) == [HEAD]

    def test_processes_committing_at_once_get_distinct_indexes(self, catalog, catalog_url):
        catalog.commit_version(new_version("first"))
        results = _run_in_processes(catalog_url, workers=2, count=15)
        got = sorted(i for r in results for i in r)
        assert got == list(range(1, 31))
        assert all(r == sorted(r) for r in results)
        assert [v.index for v in catalog.list_versions("zoo", "animals")] == list(range(31))

    def test_sixteen_processes_commit_eighty_versions_without_gaps(self, catalog, catalog_url):
        """Version numbers are assigned inside the commit transaction (issue 14)."""
        results = _run_in_processes(catalog_url, workers=16, count=5)
        assert sorted(i for r in results for i in r) == list(range(80))
        assert all(r == sorted(r) for r in results)
        listed = catalog.list_versions("zoo", "animals")
        assert [v.index for v in listed] == list(range(80))
        assert len({v.digest for v in listed}) == 80
        assert catalog.get_version("zoo", "animals").index == 79
        # every commit raised the generation once: none lost (a lost increment can set it
        # back below one a store has seen, and gc then refuses the catalog as a backup)
        assert catalog.identity().generation >= 80

    def test_processes_moving_aliases_at_once(self, catalog, catalog_url):
        catalog.commit_version(new_version("a"))
        catalog.commit_version(new_version("b"))
        _run_in_processes(catalog_url, workers=8, count=6, job="aliases")
        history = catalog.alias_history("zoo", "animals")
        for i in range(6):
            moves = [(e.from_index, e.to_index) for e in history if e.alias == f"a{i}"]
            assert moves[0][0] is None and all(m[0] is not None for m in moves[1:])  # one first insert
            assert all(a[1] == b[0] for a, b in itertools.pairwise(moves))  # a chain of moves
            assert catalog.get_version("zoo", "animals", f"a{i}").index == moves[-1][1]

    def test_processes_opening_one_draft_at_once_share_it(self, catalog, catalog_url):
        results = _run_in_processes(catalog_url, workers=8, count=12, job="draft")
        for i in range(12):
            assert len({r[i] for r in results}) == 1
        assert len(catalog.list_drafts("zoo", "corpus")) == 12

    # --- runs: conditional update, liveness, filter trees (issue 5) ---------------------
    def test_update_run_if_decides_inside_the_transaction(self, catalog):
        catalog.create_run(a_run("r1", pid=7))
        seen = []

        def refuse(record):
            seen.append((record.id, record.pid))
            return "held by pid 7" if record.pid == 7 else None

        with pytest.raises(ConflictError, match="held by pid 7"):
            catalog.update_run_if("r1", refuse, pid=8, state="finished")
        assert (catalog.get_run("r1").pid, catalog.get_run("r1").state) == (7, "running")  # unchanged
        catalog.update_run("r1", pid=9)
        assert catalog.update_run_if("r1", refuse, pid=8).pid == 8
        assert seen == [("r1", 7), ("r1", 9)]
        with pytest.raises(NotFoundError):
            catalog.update_run_if("ghost", refuse, pid=1)
        with pytest.raises(InvalidInputError):
            catalog.update_run_if("r1", refuse, state="bogus")

    def test_run_state_filters_with_liveness(self, catalog):
        from lodestore.catalog.query import Liveness

        now = datetime.now(UTC)
        old = now - timedelta(hours=1)
        for rid, state, host, pid, beat in (
            ("fin", "finished", "h1", 1, old), ("dead", "running", "h1", 41, old),
            ("asleep", "running", "h1", 42, old), ("fresh", "running", "h2", 5, now),
            ("silent", "running", "h2", 5, old),
        ):
            catalog.create_run(a_run(rid, state=state, host=host, pid=pid, heartbeat_at=beat, created_at=old))
            catalog.commit_version(new_version(rid, name=f"out-{rid}", run_id=rid))
        asked = []

        def alive(pid):
            asked.append(pid)
            return pid == 42

        live = Liveness(stale_before=now - timedelta(minutes=5), host="h1", pid_alive=alive)

        def ids(filters):
            return sorted(r.id for r in catalog.find_runs(filters, liveness=live))

        assert ids({"state": "crashed"}) == ["dead", "silent"]
        assert sorted(set(asked)) == [41, 42]  # only stale running runs on this host are checked
        assert ids("state!=running") == ["dead", "fin", "silent"]
        assert ids({"state": {"$in": ["crashed", "finished"]}}) == ["dead", "fin", "silent"]
        assert ids({"state": {"$nin": ["crashed"]}}) == ["asleep", "fin", "fresh"]
        assert ids("state=running") == ["asleep", "fresh"]
        assert sorted(r.id for r in catalog.find_runs({"state": "running"})) == [
            "asleep", "dead", "fresh", "silent"]  # no liveness: stored states
        found = catalog.search_versions("run.state=crashed", liveness=live)
        assert sorted(v.name for v in found) == ["out-dead", "out-silent"]

    def test_filter_trees_nulls_and_keys(self, catalog):
        catalog.create_run(a_run("a", group="g1", summary={"acc": 0.5}))
        catalog.create_run(a_run("b", group="g2"))
        catalog.create_run(a_run("c"))

        def ids(filters, **kw):
            return sorted(r.id for r in catalog.find_runs(filters, **kw))

        assert ids({"$or": [{"group": "g1"}, {"group": None}]}) == ["a", "c"]
        assert ids("group=g1 OR NOT summary.acc=0.5 group=g2") == ["a", "b"]
        assert ids({"group": {"$ne": "g1"}}) == ["b", "c"]  # != holds for a missing value
        assert ids({"summary.acc": None}) == ["b", "c"]
        for bad in ({'summary.a"b': 1}, {"summary..x": 1}, {"$or": []}, {"$xor": [{}]}):
            with pytest.raises(InvalidInputError):
                catalog.find_runs(bad)
        with pytest.raises(InvalidInputError, match="bad order key"):
            catalog.find_runs(None, order='-summary.a"b')

    def test_upgrade_from_0001_adds_the_search_indexes(self, catalog_url):
        """An older schema: an embedded catalog (SQLite) upgrades itself on open; a shared
        one (PostgreSQL) is refused, naming both revisions, until `upgrade_schema` (what
        `lode db upgrade` runs) migrates it."""
        from alembic import command

        from lodestore.catalog.migrate import alembic_config
        from lodestore.catalog.sql import SqlCatalog

        command.upgrade(alembic_config(catalog_url), "0001")
        assert self._revision(catalog_url) == ["0001"]
        if self.upgrades_on_open:
            SqlCatalog(catalog_url).close()  # opening migrates to head
        else:
            with pytest.raises(StoreFormatError, match=rf"revision '0001', older than this lodestore's '{HEAD}': "
                                                       r"run `lode db upgrade --catalog postgresql://"):
                SqlCatalog(catalog_url)
            assert self._revision(catalog_url) == ["0001"]  # refused: nothing migrated
            done = SqlCatalog.upgrade_schema(catalog_url)
            assert (done.from_revision, done.to_revision, done.changed) == ("0001", HEAD, True)
            SqlCatalog(catalog_url).close()
        assert self._revision(catalog_url) == [HEAD]
        engine = create_engine(catalog_url)
        try:
            found = {ix["name"] for table in ("artifacts", "aliases", "runs")
                     for ix in inspect(engine).get_indexes(table)}
        finally:
            engine.dispose()
        assert {"ix_artifacts_name", "ix_aliases_alias", "ix_runs_job_type"} <= found
        self._assert_schema_matches_metadata(catalog_url)

    def test_upgrade_schema_reports_what_it_did(self, catalog_url):
        from lodestore.catalog.sql import SqlCatalog

        first = SqlCatalog.upgrade_schema(catalog_url)  # an empty database: created at head
        assert (first.from_revision, first.to_revision, first.changed) == (None, HEAD, True)
        again = SqlCatalog.upgrade_schema(catalog_url)
        assert (again.from_revision, again.changed) == (HEAD, False)
        engine = create_engine(catalog_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        engine.dispose()
        with pytest.raises(StoreFormatError,
                           match=rf"'9999_from_the_future'.*newest known: '{HEAD}'.*upgrade lodestore"):
            SqlCatalog.upgrade_schema(catalog_url)
        assert self._revision(catalog_url) == ["9999_from_the_future"]
