"""Lifecycle: delete / restore / purge, garbage collection, retention and prune, fsck,
and the broken state. The place that joins the catalog (which versions exist, which
file digests they name) with the store (which files it still holds). Storage
accounting lives in accounting.py (re-exported here).

Broken versions: `lode fsck --repair` marks live versions whose bytes are lost
"broken"; the store records the lost file digests (ContentStore.lost_files). A broken
version is never served (`refuse_broken`), `latest` skips it, and a soft-deleted
version whose bytes are lost comes back broken when restored: the store's record of
what is missing decides, so a version whose bytes were logged again since comes back
live, and `fsck --repair` turns broken versions whose bytes are all back to live.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lodestore import settings
from lodestore.catalog.records import LATEST, VersionRecord
from lodestore.config import checked_duration, checked_grace
from lodestore.errors import (
    ConflictError,
    CorruptionError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyStoreError,
)
from lodestore.sdk import accounting
from lodestore.sdk.accounting import StoreFigures, Usage, usage, version_usage  # noqa: F401  (re-exported)
from lodestore.store.base import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_REPACK_THRESHOLD,
    CatalogBinding,
    FsckReport,
    GcPlan,
    RepairResult,
)
from lodestore.testhooks import pause_point

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

GRACE_ENV = settings.GC_GRACE_SECONDS


def gc_grace_default() -> float:
    v = settings.gc_grace_seconds()
    if not v:
        return DEFAULT_GRACE_SECONDS
    try:
        grace = float(v)
    except ValueError:
        raise InvalidInputError(f"{GRACE_ENV}={v!r} is not a number of seconds") from None
    return checked_grace(grace, GRACE_ENV)


# ----------------------------------------------------------------------------- broken
def refuse_broken(repo: Repository, record: VersionRecord) -> None:
    """Raise before anything is written if the version is marked broken (its bytes are
    lost: serving it would write some files and then fail)."""
    current = repo.catalog.get_version_by_id(record.id)
    if current.state == "broken":
        raise CorruptionError(
            f"{current.qualified_name} is marked broken: `lode fsck --repair` found some of its bytes lost, "
            "so it cannot be downloaded. Run `lode fsck` for details; log the data again "
            "(then `lode fsck --repair` marks it live) or delete the version")


def lost_digests(repo: Repository, digests: set[str]) -> set[str]:
    """Which of these file digests the store no longer holds."""
    return repo.store.missing(digests)


# ----------------------------------------------------------------------------- delete / restore
def custom_aliases(record: VersionRecord) -> list[str]:
    return [a for a in record.aliases if a != LATEST]


def delete_version(repo: Repository, record: VersionRecord, permanent: bool = False,
                   delete_aliases: bool = False, run_id: str | None = None) -> VersionRecord | None:
    """Soft delete (hidden, recoverable) or, with permanent=True, erase the version's
    rows (its bytes go at the next gc). Versions holding aliases other than latest are
    refused unless delete_aliases. Returns the deleted record (None once purged)."""
    current = repo.catalog.get_version_by_id(record.id)
    held = custom_aliases(current)
    if held and not delete_aliases:
        raise ConflictError(f"{current.qualified_name} holds alias(es) {', '.join(held)}; "
                            "pass delete_aliases=True (--delete-aliases) to delete it anyway")
    deleted = repo.catalog.delete_version(current.id, run_id=run_id)
    if not permanent:
        return deleted
    pause_point("purge-before")
    repo.catalog.purge_version(current.id)
    return None


def restore_version(repo: Repository, project: str, name: str, selector: str,
                    run_id: str | None = None) -> VersionRecord:
    """Undo a soft delete. A version whose bytes are lost (fsck --repair) comes back
    broken, not live."""
    try:
        record = repo.catalog.get_version(project, name, selector, include_deleted=True)
    except NotFoundError as e:
        raise NotFoundError(f"cannot restore {project}/{name}:{selector}: {e} "
                            "(a version deleted with --permanent is gone for good)") from None
    return restore_record(repo, record, run_id=run_id)


def restore_record(repo: Repository, record: VersionRecord, run_id: str | None = None) -> VersionRecord:
    digests = {e.digest for e in repo.catalog.iter_entries(record.id)}
    state = "broken" if lost_digests(repo, digests) else "live"
    return repo.catalog.restore_version(record.id, run_id=run_id, state=state)


# ----------------------------------------------------------------------------- catalog binding
ADOPT_HINT = ("put the right catalog.db back; or, if this catalog really is the one you mean to keep "
              "(gc then deletes every byte it does not reference), run `lode gc --adopt-catalog`")


def catalog_mismatch(repo: Repository) -> str | None:
    """Why the catalog is not the one the store's bytes were written for (store/binding.py),
    or None. A store holding no content binds to whatever catalog it is given; a store
    from before bindings binds here when its catalog references most of its files."""
    store = repo.store
    root = store.location
    recorded = store.catalog_binding()
    identity = repo.catalog.identity()
    if not store.holds_content():
        if recorded != CatalogBinding(identity.instance_id, identity.generation):
            store.bind_catalog(identity.instance_id, identity.generation)
        return None
    if recorded is None:
        return _bind_unbound_store(repo, identity)
    if recorded.catalog_id != identity.instance_id:
        return (f"the catalog {repo.catalog_path} is not the catalog the store at {root} was written with "
                f"(catalog id {identity.instance_id}, the store belongs to {recorded.catalog_id}): was catalog.db "
                "deleted, emptied or replaced?")
    if identity.generation < recorded.generation:
        return (f"the catalog {repo.catalog_path} is older than the store at {root} (generation "
                f"{identity.generation}, the store has seen {recorded.generation}): was it restored from an old "
                "backup? Versions logged since would lose their bytes")
    return None


def _bind_unbound_store(repo: Repository, identity) -> str | None:
    """A store holding content with no binding (written before bindings existed): bind
    it to this catalog only if the catalog references at least half of the files the
    store indexes. A catalog made after the real one was lost references none or few of
    them, even once something new was logged into it (a count of versions alone would
    let one new log claim every old byte). Returns the refusal, or None once bound."""
    root = repo.store.location
    indexed = {f.digest for f in repo.store.iter_files()}
    referenced = repo.catalog.referenced_digests(include_deleted=True) if identity.has_versions else set()
    covered = len(indexed & referenced)
    if indexed and covered * 2 >= len(indexed):
        repo.store.bind_catalog(identity.instance_id, identity.generation)
        return None
    return (f"the store at {root} holds content but has no record of which catalog it belongs to, and the "
            f"catalog {repo.catalog_path} references only {covered} of its {len(indexed)} indexed file(s) "
            "(was catalog.db deleted, emptied or replaced?)")


def adopt_catalog(repo: Repository) -> None:
    """Bind the store to the current catalog whatever it recorded before: the user's
    explicit decision that this catalog owns the store's bytes."""
    identity = repo.catalog.identity()
    repo.store.bind_catalog(identity.instance_id, identity.generation)


def refuse_catalog_mismatch(repo: Repository, doing: str) -> None:
    reason = catalog_mismatch(repo)
    if reason is not None:
        raise ConflictError(f"{doing} refused: {reason}; {ADOPT_HINT}")


# ----------------------------------------------------------------------------- gc
def gc(repo: Repository, dry_run: bool = False, grace: float | None = None,
       repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
       on_plan: Callable[[GcPlan], None] | None = None,
       adopt: bool = False) -> GcPlan:
    """Reclaim bytes no version (live or soft-deleted) references (ContentStore.gc;
    the local store's: store/maintenance.py).

    Refused (ConflictError) when the catalog is not the one the store belongs to
    (`catalog_mismatch`), unless `adopt`: then the store is bound to this catalog first
    (not on a dry run, which only shows what gc would do once adopted)."""
    if repo.read_only:
        raise ReadOnlyStoreError(repo.root, "collect garbage")
    if grace is not None:
        grace = checked_grace(grace, "grace")
    if not 0.0 <= repack_threshold <= 1.0:
        raise InvalidInputError(f"repack_threshold is a fraction of a pack, 0 to 1; got {repack_threshold}")

    def keep() -> set[str]:  # called under the exclusive store lock (not on a dry run)
        if adopt and not dry_run:
            adopt_catalog(repo)
        elif not adopt:
            refuse_catalog_mismatch(repo, "gc")
        return accounting.gc_kept_digests(repo)

    return repo.store.gc(keep, grace=gc_grace_default() if grace is None else grace, dry_run=dry_run,
                         repack_threshold=repack_threshold, on_plan=on_plan)


def stats(repo: Repository, gc_grace: float | None = None) -> StoreFigures:
    """`lode stats` (accounting.stats), with gc's figures at the configured grace."""
    return accounting.stats(repo, gc_grace=gc_grace_default() if gc_grace is None else gc_grace)


# ----------------------------------------------------------------------------- retention
@dataclass
class PrunePlan:
    drop: list[VersionRecord] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    executed: bool = False

    def as_dict(self) -> list[dict]:
        return [{"name": v.qualified_name, "id": v.id, "reason": self.reasons[v.id], "size": v.size,
                 "aliases": custom_aliases(v)} for v in self.drop]


def check_policy(policy: dict[str, Any]) -> dict[str, Any]:
    allowed = {"keep_last", "keep_aliased", "max_age_seconds"}
    extra = set(policy) - allowed
    if extra:
        raise InvalidInputError(f"unknown retention setting(s) {sorted(extra)}; allowed: {sorted(allowed)}")
    for k in ("keep_last", "max_age_seconds"):
        v = policy.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise InvalidInputError(f"{k} must be a non-negative integer, got {v!r}")
    return policy


def plan_prune(repo: Repository, now: datetime | None = None) -> PrunePlan:
    """Which live versions the retention policies (and per-version TTLs) drop.

    keep_last N: only the N newest versions stay; max_age_seconds and a version's own
    ttl: older versions go; keep_aliased: versions holding an alias other than latest
    always stay."""
    now = now or datetime.now(UTC)
    plan = PrunePlan()
    for art in repo.catalog.list_artifacts():
        policy = repo.catalog.get_retention(art.project, art.name) or {}
        records = repo.catalog.list_versions(art.project, art.name)
        newest_first = sorted(records, key=lambda r: r.index, reverse=True)
        for rank, r in enumerate(newest_first):
            age = (now - r.created_at).total_seconds()
            reason = None
            if r.ttl_seconds is not None and age > r.ttl_seconds:
                reason = f"ttl {r.ttl_seconds}s expired"
            elif policy.get("max_age_seconds") is not None and age > policy["max_age_seconds"]:
                reason = f"older than {policy['max_age_seconds']}s"
            elif policy.get("keep_last") is not None and rank >= policy["keep_last"]:
                reason = f"beyond keep_last={policy['keep_last']}"
            if reason is None:
                continue
            if policy.get("keep_aliased") and custom_aliases(r):
                continue
            plan.drop.append(r)
            plan.reasons[r.id] = reason
    return plan


def prune(repo: Repository, dry_run: bool = False,
          on_plan: Callable[[PrunePlan], None] | None = None) -> PrunePlan:
    """Soft-delete what the retention policies drop (printing the plan first). A policy
    without keep_aliased drops aliased versions too, without the alias refusal of
    `delete_version`: the policy is the owner's standing decision, and the plan lists the
    aliases each drop removes."""
    plan = plan_prune(repo)
    if on_plan:
        on_plan(plan)
    if not dry_run:
        for r in plan.drop:
            repo.catalog.delete_version(r.id)
        plan.executed = True
    return plan


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """"30d", "12h", "90m", "2w", "3600s" (or plain seconds) -> timedelta, for TTLs
    (`lode put --ttl 30d`) and ages."""
    m = re.fullmatch(r"\s*(\d{1,30})\s*([smhdw]?)\s*", str(text).lower())
    if not m or int(m.group(1)) <= 0:
        raise InvalidInputError(f"not a duration: {text!r} (e.g. 30d, 12h, 90m, 2w; must be > 0)")
    return checked_duration(int(m.group(1)) * _DURATION_UNITS[m.group(2) or "s"], f"duration {text!r}")


def merge_policy(current: dict[str, Any] | None, keep_last: int | None = None,
                 keep_aliased: bool | None = None, max_age_seconds: int | None = None) -> dict[str, Any]:
    """Change only the settings given (None: keep what the policy says)."""
    policy = dict(current or {})
    for key, value in (("keep_last", keep_last), ("keep_aliased", keep_aliased),
                       ("max_age_seconds", max_age_seconds)):
        if value is not None:
            policy[key] = value
    return check_policy(policy)


# ----------------------------------------------------------------------------- fsck
def _all_versions(repo: Repository) -> list[VersionRecord]:
    return [r for a in repo.catalog.list_artifacts()
            for r in repo.catalog.list_versions(a.project, a.name, include_deleted=True)]


@dataclass
class FsckResult:
    """fsck's answer: the store's report joined with the catalog's manifests."""

    report: FsckReport
    ok: bool  # False only for damage not seen before (or a catalog that is not the store's)
    missing_files: list[str] = field(default_factory=list)  # referenced, not in the store, not known lost
    known_lost_files: list[str] = field(default_factory=list)  # referenced, recorded lost by a repair
    affected_versions: list[str] = field(default_factory=list)  # new damage
    known_broken_versions: list[str] = field(default_factory=list)  # reported and marked before
    healable_versions: list[str] = field(default_factory=list)  # broken, bytes all back
    catalog_mismatch: str | None = None
    unreferenced_files: int | None = None  # set when the catalog is not the store's own
    repaired: RepairOutcome | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`lode fsck --json`): the store report's keys, then the joined ones."""
        d: dict[str, Any] = self.report.to_dict()
        d["repaired"] = {} if self.repaired is None else self.repaired.to_dict()
        d.update(ok=self.ok, missing_files=self.missing_files, known_lost_files=self.known_lost_files,
                 affected_versions=self.affected_versions, known_broken_versions=self.known_broken_versions,
                 healable_versions=self.healable_versions, catalog_mismatch=self.catalog_mismatch)
        if self.unreferenced_files is not None:
            d["unreferenced_files"] = self.unreferenced_files
        return d


@dataclass
class RepairOutcome:
    """What `fsck --repair` did: the store's repair, then the versions it marked."""

    store: RepairResult
    marked_broken: list[str]
    deleted_affected: list[str]  # soft-deleted: restore brings them back broken
    healed: list[str]  # broken versions whose bytes are back: marked live
    after: FsckResult  # a fresh check once done
    index_set_aside: str | None = None  # where a damaged index went

    def to_dict(self) -> dict[str, Any]:
        return {**self.store.to_dict(), "marked_broken": self.marked_broken,
                "deleted_affected": self.deleted_affected, "healed": self.healed,
                "after": self.after.to_dict(), "index_set_aside": self.index_set_aside}


@dataclass
class _Inspection:
    """fsck's joined view, with what a repair needs."""

    result: FsckResult
    new: dict[int, VersionRecord]
    known: dict[int, VersionRecord]
    healable: dict[int, VersionRecord]
    absent: dict[str, int]


def _inspect(repo: Repository) -> _Inspection:
    """Store report joined with the manifests: which versions hold lost or bad bytes,
    which of that damage is already known (reported and marked by an earlier repair).

    The caller holds the store lock (shared: no gc or repair runs; exclusive: nothing
    else writes). The catalog is read *before* the index snapshot: a version is
    committed only after its files are indexed, so every version read here has its
    files in the snapshot unless they are really gone, however many logs commit
    meanwhile (reading the index first reported their files missing)."""
    per_version: dict[int, set[str]] = defaultdict(set)
    sizes: dict[str, int] = {}
    for vid, digest, size in repo.catalog.version_digests(include_deleted=True):
        per_version[vid].add(digest)
        sizes[digest] = size
    records = {r.id: r for r in _all_versions(repo)}
    report = repo.store.fsck()
    present = report.indexed_files
    known_lost = set(report.lost_files)
    bad = set(report.bad_files)
    missing_files = {d for ds in per_version.values() for d in ds if d not in present}
    new, known, healable = {}, {}, {}
    for vid, digests in per_version.items():
        r = records.get(vid)
        if r is None:
            continue  # committed after the manifests were read: not part of this check
        damaged = digests & (missing_files | bad)
        if not damaged:
            if r.state == "broken":
                healable[vid] = r  # its bytes are all back (the data was logged again)
            continue
        if r.state in ("broken", "deleted") and damaged <= (known_lost - bad):
            known[vid] = r  # reported before: marked broken (or comes back broken on restore)
        else:
            new[vid] = r
    for vid, r in records.items():
        if r.state == "broken" and vid not in per_version:
            healable[vid] = r  # an empty version cannot lose bytes
    new_missing = missing_files - known_lost
    result = FsckResult(
        report=report,
        ok=report.ok and not new_missing and not new,
        missing_files=sorted(new_missing),
        known_lost_files=sorted(missing_files & known_lost),
        affected_versions=sorted(r.qualified_name for r in new.values()),
        known_broken_versions=sorted(r.qualified_name for r in known.values()),
        healable_versions=sorted(r.qualified_name for r in healable.values()),
    )
    return _Inspection(result, new, known, healable, {d: sizes[d] for d in new_missing})


def fsck(repo: Repository, repair: bool = False) -> FsckResult:
    """Check the store and every manifest against it.

    `ok` is False only for damage not seen before; versions already marked broken (and
    soft-deleted ones whose bytes an earlier repair recorded as lost) are listed under
    `known_broken_versions` without failing the check. With repair: quarantine corrupt
    packs, rebuild the index (and the rows of small files the packs hold whole), forget
    lost files (so logging the data again stores them), mark every affected version
    broken (soft-deleted ones come back broken on restore), and mark broken versions
    whose bytes are all back live again. `repaired.after` is a fresh check once done.

    Beside writers: the check holds the shared store lock (no gc or repair runs while
    it reads); the repair holds the exclusive one from its first look to its last
    mark, like gc, so no log is half-way through while it decides what is lost.

    A damaged index.db (it does not open, or quick_check finds bad pages) fails the
    check (CorruptionError); the repair moves it aside (index.db.corrupt-<time>, kept)
    and rebuilds the index from the packs.

    A catalog that is not the store's own (`catalog_mismatch`: deleted, emptied, or an
    old backup) makes the check fail with `catalog_mismatch` set, and the repair is
    refused (ConflictError): it would mark versions broken or forget bytes because of
    the wrong catalog."""
    if repair and repo.read_only:
        raise ReadOnlyStoreError(repo.root, "repair it")
    mismatch = catalog_mismatch(repo)
    if repair and mismatch is not None:
        raise ConflictError(f"fsck --repair refused: {mismatch}; {ADOPT_HINT}")
    store = repo.store
    with store.maintenance_lock(exclusive=repair):
        damaged_index = store.index_problem()
        aside = None
        if damaged_index is not None:
            if not repair:
                raise CorruptionError(f"fsck: {damaged_index}")
            aside = store.set_aside_damaged_index()
        found = _inspect(repo)
        result = found.result
        result.catalog_mismatch = mismatch
        if mismatch is not None:
            result.ok = False
            result.unreferenced_files = len(result.report.indexed_files
                                            - {d for _, d, _ in repo.catalog.version_digests(True)})
        if repair:
            result.repaired = _repair(repo, found)
            result.repaired.index_set_aside = aside
        return result


def _repair(repo: Repository, found: _Inspection) -> RepairOutcome:
    """fsck's repair, under the exclusive store lock the caller holds."""
    done = repo.store.repair(found.result.report, absent=found.absent)
    after = _inspect(repo)
    marked, healed = [], []
    for vid, r in {**after.new, **after.known}.items():
        if r.state == "live":
            repo.catalog.set_version_state(vid, "broken")
            marked.append(r.qualified_name)
    for vid, r in after.healable.items():
        repo.catalog.set_version_state(vid, "live")
        healed.append(r.qualified_name)
    deleted_affected = sorted(r.qualified_name for r in {**found.new, **after.known}.values()
                              if r.state == "deleted")
    final = _inspect(repo).result if (marked or healed) else after.result
    return RepairOutcome(store=done, marked_broken=sorted(marked), deleted_affected=deleted_affected,
                         healed=sorted(healed), after=final)
