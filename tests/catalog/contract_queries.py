"""The contract's second half: what a catalog answers by querying (search language, run
filters and order, manifest diffs, lineage hops, ordering of names) and distributed
drafts. Every backend must give the same answers: these are the places where SQL
dialects differ (LIKE and case, collations, JSON paths, booleans, NULL ordering)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lodestore.catalog.base import Catalog
from lodestore.catalog.records import DraftPart, ManifestEntry
from lodestore.errors import ConflictError, InvalidInputError, NotFoundError

from .contract_data import a_run, entries, manifest_digest, new_version


def _names(catalog: Catalog, text: str) -> list[str]:
    return sorted(v.qualified_name for v in catalog.search_versions(text))


def _part(part_id: str, *paths: str, metadata=None) -> DraftPart:
    items = tuple(entries(*paths, salt=part_id))
    return DraftPart(part_id, manifest_digest(list(items)), metadata or {}, None, datetime.now(UTC), items)


class QueryContract:
    """Search, run filters, diffs, lineage hops and name ordering."""

    @pytest.fixture
    def zoo(self, catalog: Catalog) -> Catalog:
        catalog.create_run(a_run("prep", job_type="prep", tags=("etl", "Raw_2")))
        catalog.create_run(a_run("train", job_type="train", group="sweep-1", config={"lr": 0.1, "opt": "Adam"},
                                 tags=("axb",)))
        catalog.commit_version(new_version(
            "a", name="animals", run_id="prep", description="Pets from the shelter", tags=["raw"],
            metadata={"rows": 100, "source": {"name": "shelter"}, "ok": True, "path/key": "x_y"}))
        catalog.commit_version(new_version(
            "b", name="ResNet50", type="model", run_id="train", tags=["production"], aliases=["best"],
            metadata={"val_acc": 0.95, "arch": "resnet", "ok": False, "n": 3}))
        catalog.commit_version(new_version(
            "c", name="resnet18", type="model", run_id="train", tags=["prod-b"],
            metadata={"val_acc": 0.85, "arch": "Resnet", "n": 10}))
        catalog.commit_version(new_version(
            "d", name="vit", type="model", metadata={"val_acc": "n/a", "nested": {"depth": {"x": 12}},
                                                     "arch": "b", "ok": "true"}))
        catalog.commit_version(new_version("e", project="lab", name="axb", type="model",
                                           metadata={"val_acc": 0.99, "arch": "a%b"}))
        return catalog

    def test_search_text_fields_fold_ascii_case_and_escape_wildcards(self, zoo: Catalog):
        assert _names(zoo, "name~resnet") == ["zoo/ResNet50:v0", "zoo/resnet18:v0"]  # ~ ignores case
        assert _names(zoo, "name~RES*50") == ["zoo/ResNet50:v0"]
        assert _names(zoo, "name=resnet*") == ["zoo/ResNet50:v0", "zoo/resnet18:v0"]  # a glob ignores case
        assert _names(zoo, "name=resnet50") == []  # = without a glob is exact
        assert _names(zoo, "name=ResNet50") == ["zoo/ResNet50:v0"]
        assert _names(zoo, "name~a_b") == [] and _names(zoo, "name~a?b") == ["lab/axb:v0"]
        assert _names(zoo, "name~%") == [] and _names(zoo, "name~_") == []
        assert _names(zoo, 'name~"\\"') == []
        assert _names(zoo, "metadata.arch~a%b") == ["lab/axb:v0"]  # % is a character, not a wildcard
        assert _names(zoo, "metadata.path/key=x_y") == ["zoo/animals:v0"]
        assert _names(zoo, "description~SHELTER") == ["zoo/animals:v0"]
        assert _names(zoo, "tag:PROD*") == ["zoo/ResNet50:v0", "zoo/resnet18:v0"]
        assert _names(zoo, "tag:production") == ["zoo/ResNet50:v0"]
        assert _names(zoo, "tag:Production") == []  # a tag without a glob is exact
        assert _names(zoo, "alias:best") == ["zoo/ResNet50:v0"]
        assert _names(zoo, "alias:latest -type=model") == ["zoo/animals:v0"]
        assert _names(zoo, "project=lab") == ["lab/axb:v0"]
        assert _names(zoo, "type!=model") == ["zoo/animals:v0"]

    def test_search_json_values_compare_by_their_json_type(self, zoo: Catalog):
        assert _names(zoo, "metadata.val_acc>=0.9") == ["lab/axb:v0", "zoo/ResNet50:v0"]
        assert _names(zoo, "metadata.val_acc<0.9") == ["zoo/resnet18:v0"]  # "n/a" is no number
        assert _names(zoo, "metadata.val_acc=n/a") == ["zoo/vit:v0"]
        assert _names(zoo, "metadata.n>5") == ["zoo/resnet18:v0"]  # numerically: 10 > 5 > 3
        assert _names(zoo, "metadata.n=3") == ["zoo/ResNet50:v0"]
        assert _names(zoo, "metadata.nested.depth.x>10") == ["zoo/vit:v0"]
        assert _names(zoo, "metadata.source.name=shelter") == ["zoo/animals:v0"]
        assert _names(zoo, "metadata.ok=true") == ["zoo/animals:v0"]  # JSON true, not the text "true"
        assert _names(zoo, "metadata.ok=false") == ["zoo/ResNet50:v0"]
        assert _names(zoo, "metadata.ok!=true") == [
            "lab/axb:v0", "zoo/ResNet50:v0", "zoo/resnet18:v0", "zoo/vit:v0"]
        # text compares byte-wise, as Python's str does: "Resnet" < "a%b" < "b" < "resnet"
        assert _names(zoo, "metadata.arch<a") == ["zoo/resnet18:v0"]
        assert _names(zoo, "metadata.arch>=b") == ["zoo/ResNet50:v0", "zoo/vit:v0"]
        assert _names(zoo, "metadata.arch~RESNET") == ["zoo/ResNet50:v0", "zoo/resnet18:v0"]
        assert _names(zoo, "metadata.missing!=1") == _names(zoo, "version=0")  # != holds when missing
        assert len(_names(zoo, "version=0")) == 5

    def test_search_numbers_dates_digests_and_runs(self, zoo: Catalog):
        v = zoo.get_version("zoo", "animals")
        assert _names(zoo, f"digest={v.digest[:14]}") == ["zoo/animals:v0"]
        assert _names(zoo, f"digest~{v.digest[:14]}") == ["zoo/animals:v0"]
        assert _names(zoo, f"size={v.size} files=2 type=dataset") == ["zoo/animals:v0"]
        assert _names(zoo, "size>1GB") == [] and _names(zoo, "version>=1") == []
        assert _names(zoo, "created>2020-01-01 type=dataset") == ["zoo/animals:v0"]
        today = datetime.now(UTC).date().isoformat()
        assert _names(zoo, f"created={today} type=dataset") == ["zoo/animals:v0"]
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        assert _names(zoo, f"created>{tomorrow}") == []
        assert _names(zoo, "run.job_type=prep") == ["zoo/animals:v0"]
        assert _names(zoo, "run.group=sweep-1 run.config.lr=0.1 metadata.arch=resnet") == ["zoo/ResNet50:v0"]
        assert _names(zoo, "run.config.opt=Adam") == ["zoo/ResNet50:v0", "zoo/resnet18:v0"]
        assert _names(zoo, "run.tag=raw*") == ["zoo/animals:v0"]  # run tags fold case too
        assert _names(zoo, "run.tag=etl") == ["zoo/animals:v0"]
        assert _names(zoo, "run.tag=raw_2") == ["zoo/animals:v0"]
        assert _names(zoo, "run.tag=a_b") == []  # "_" is no wildcard
        zoo.delete_version(zoo.get_version("zoo", "vit").id)
        assert _names(zoo, "state=deleted OR type=dataset") == ["zoo/animals:v0", "zoo/vit:v0"]
        assert "zoo/vit:v0" not in _names(zoo, "type=model")

    def test_search_orders_newest_first_and_limits(self, catalog: Catalog):
        for i in range(6):
            catalog.commit_version(new_version(f"v{i}", name=f"m{i % 2}"))
        found = catalog.search_versions("project=zoo")
        assert [(v.created_at, v.id) for v in found] == sorted(
            ((v.created_at, v.id) for v in found), reverse=True)
        assert [v.id for v in catalog.search_versions("project=zoo", limit=2)] == [v.id for v in found[:2]]

    def test_run_filters_and_order(self, catalog: Catalog):
        t = datetime(2024, 1, 1, tzinfo=UTC)
        for i, acc in enumerate([0.8, 0.93, 0.91, None, "n/a"]):
            summary = {} if acc is None else {"val_acc": acc}
            catalog.create_run(a_run(f"s{i}", group="sweep-1", summary=summary, config={"lr": 10 ** -i},
                                     created_at=t + timedelta(seconds=i), tags=("Ab", "x")))
        catalog.create_run(a_run("solo", group="other", summary={"val_acc": 0.99, "ok": True},
                                 created_at=t + timedelta(seconds=9), exit_code=1, state="failed"))

        def ids(filters=None, **kw):
            return [r.id for r in catalog.find_runs(filters, **kw)]

        assert ids({"group": "sweep-1"}, order="-summary.val_acc") == ["s1", "s2", "s0", "s3", "s4"]
        assert ids({"group": "sweep-1"}, order="summary.val_acc") == ["s0", "s2", "s1", "s3", "s4"]
        assert ids("summary.val_acc>=0.9") == ["s1", "s2", "solo"]
        assert ids({"config.lr": {"$lt": 0.05}}) == ["s2", "s3", "s4"]
        assert ids({"summary.val_acc": {"$in": [0.8, "n/a"]}}) == ["s0", "s4"]
        assert ids({"summary.val_acc": {"$nin": [0.8, "n/a"]}}) == ["s1", "s2", "s3", "solo"]
        assert ids("summary.ok=true") == ["solo"]
        assert ids("tag:ab") == ["s0", "s1", "s2", "s3", "s4"]
        assert ids("exit_code>0") == ["solo"] and ids({"exit_code": None}) == [f"s{i}" for i in range(5)]
        assert ids("group~SWEEP") == [f"s{i}" for i in range(5)]
        assert ids("created>2024-01-01T00:00:03") == ["s4", "solo"]
        assert ids(None, order="-created_at", limit=2) == ["solo", "s4"]
        assert ids(None, order="name") == ["s0", "s1", "s2", "s3", "s4", "solo"]  # ties: created, id

    def test_names_sort_byte_wise(self, catalog: Catalog):
        for project in ("b", "B", "a", "9x", "A1"):
            catalog.commit_version(new_version(project, project=project))
        assert catalog.list_projects() == sorted(["b", "B", "a", "9x", "A1"])
        for name in ("zeta", "Zeta", "alpha", "Beta"):
            catalog.commit_version(new_version(name, name=name, type=name))
        assert [a.name for a in catalog.list_artifacts(project="zoo")] == sorted(["zeta", "Zeta",
                                                                                 "alpha", "Beta"])
        assert catalog.artifact_types("zoo") == sorted(["zeta", "Zeta", "alpha", "Beta"])

    def test_diff_of_two_manifests(self, catalog: Catalog):
        a = entries("same.txt", "gone.txt", "B.txt", "dir/x", salt="1")
        b = [e for e in a if e.path not in ("gone.txt", "B.txt")] + entries("new.txt", "a.txt", salt="2") + [
            ManifestEntry("B.txt", "blake3:changed", 3)]
        va = catalog.commit_version(new_version(items=a)).version
        vb = catalog.commit_version(new_version(items=sorted(b, key=lambda e: e.path))).version
        rows = list(catalog.iter_diff(va.id, vb.id))
        assert [(s, (r.old or r.new).path) for s, r in rows] == [
            ("added", "a.txt"), ("added", "new.txt"), ("removed", "gone.txt"), ("modified", "B.txt")]
        assert [(r.old.digest, r.new.digest) for s, r in rows if s == "modified"] == [
            (next(e.digest for e in a if e.path == "B.txt"), "blake3:changed")]
        counts = catalog.diff_counts(va.id, vb.id)
        assert (counts.added, counts.removed, counts.modified, counts.renamed) == (2, 1, 1, 0)
        assert [s for s, _ in catalog.iter_diff(va.id, vb.id, ["removed"])] == ["removed"]
        assert list(catalog.iter_diff(va.id, va.id)) == []
        with pytest.raises(NotFoundError):
            catalog.iter_diff(va.id, 10_000)  # at the call, not at the first row
        with pytest.raises(InvalidInputError):
            catalog.iter_diff(va.id, vb.id, ["moved"])

    def test_lineage_hops(self, catalog: Catalog):
        catalog.create_run(a_run("prep"))
        catalog.create_run(a_run("train"))
        catalog.create_run(a_run("eval"))
        data = catalog.commit_version(new_version("d", name="data", run_id="prep")).version
        catalog.record_use("train", data.id)
        model = catalog.commit_version(new_version("m", name="model", type="model", run_id="train")).version
        catalog.record_use("eval", model.id)
        assert catalog.lineage_hop([model.id], "up") == [("train", model.id, data.id)]
        assert catalog.lineage_hop([data.id], "up") == [("prep", data.id, None)]
        assert catalog.lineage_hop([data.id], "down") == [("train", data.id, model.id)]
        assert catalog.lineage_hop([model.id], "down") == [("eval", model.id, None)]
        step = catalog.lineage_step([model.id], "up")  # the hop and its records, in one read
        assert step.links == [("train", model.id, data.id)]
        assert sorted(step.versions) == sorted([model.id, data.id]) and list(step.runs) == ["train"]
        assert step.versions[data.id].name == "data" and step.runs["train"].id == "train"
        down = catalog.lineage_step([data.id, model.id], "down")
        assert down.links == [("train", data.id, model.id), ("eval", model.id, None)]
        assert sorted(down.runs) == ["eval", "train"]
        assert catalog.lineage_step([], "up").links == []
        with pytest.raises(InvalidInputError):
            catalog.lineage_step([data.id], "sideways")
        assert catalog.lineage_hop([], "down") == []
        with pytest.raises(InvalidInputError):
            catalog.lineage_hop([data.id], "sideways")

    def test_lookups_of_many_ids_at_once(self, catalog: Catalog):
        """More ids than one statement may bind (PostgreSQL: 65,535 parameters)."""
        catalog.create_run(a_run("r1"))
        v = catalog.commit_version(new_version("a", run_id="r1")).version
        many = range(1, 70_001)
        assert list(catalog.get_versions(many)) == [v.id]
        assert list(catalog.get_runs([f"r{i}" for i in many])) == ["r1"]
        assert catalog.lineage_hop(many, "up") == [("r1", v.id, None)]
        assert catalog.lineage_hop(many, "down") == []
        step = catalog.lineage_step(many, "up")
        assert step.links == [("r1", v.id, None)] and list(step.versions) == [v.id] and list(step.runs) == ["r1"]


class DraftContract:
    """Distributed drafts: parts, seal, finish, abort."""

    def test_draft_parts_seal_and_close(self, catalog: Catalog):
        d = catalog.open_draft("zoo", "corpus", "dataset", "g1", ttl_seconds=3600)
        assert catalog.open_draft("zoo", "corpus", "dataset", "g1", ttl_seconds=3600).id == d.id
        with pytest.raises(ConflictError, match="type"):
            catalog.open_draft("zoo", "corpus", "model", "g1", ttl_seconds=3600)
        p1, p2 = _part("shard-1", "a.bin"), _part("shard-0", "b.bin", metadata={"k": 1})
        assert catalog.add_draft_part(d.id, p1, 3600) is True
        assert catalog.add_draft_part(d.id, p1, 3600) is False  # a re-send changes nothing
        assert catalog.add_draft_part(d.id, p2, 3600) is True
        with pytest.raises(ConflictError, match="other content"):
            catalog.add_draft_part(d.id, _part("shard-1", "c.bin"), 3600)
        got = catalog.get_draft(d.id)
        assert (got.part_count, got.file_count, got.state) == (2, 2, "open")
        assert catalog.draft_digests() == {e.digest for e in p1.entries + p2.entries}
        sealed = catalog.seal_draft(d.id)
        assert [p.part_id for p in sealed] == ["shard-0", "shard-1"] and sealed[0].metadata == {"k": 1}
        with pytest.raises(ConflictError, match="being finished"):
            catalog.add_draft_part(d.id, _part("shard-2", "d.bin"), 3600)
        v = catalog.commit_version(new_version("merged", name="corpus"))
        done = catalog.close_draft(d.id, "finished", v.version.id)
        assert (done.state, done.version_id) == ("finished", v.version.id)
        assert catalog.draft_digests() == set()
        again = catalog.open_draft("zoo", "corpus", "dataset", "g1", ttl_seconds=3600, new_version=True)
        assert again.id != d.id and [x.id for x in catalog.list_drafts("zoo", "corpus")] == [again.id, d.id]
        assert catalog.close_draft(again.id, "aborted").state == "aborted"
