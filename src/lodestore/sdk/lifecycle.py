"""Lifecycle: delete / restore / purge, garbage collection, storage accounting,
retention and prune, fsck. The one place that joins the catalog (which versions exist,
which file digests they name) with the store (which chunks make each file).

Accounting is chunk-granular: a version's *exclusive* bytes are the raw bytes of the
chunks no other version (live or soft-deleted: both keep bytes until purged) holds,
i.e. what a permanent delete of that version alone followed by gc would free.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lodestore.catalog.base import LATEST, VersionRecord
from lodestore.errors import ConflictError, InvalidInputError, NotFoundError
from lodestore.store import maintenance

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


def _gc_grace_default() -> float:
    import os

    v = os.environ.get("LODESTORE_GC_GRACE_SECONDS")
    return float(v) if v else maintenance.DEFAULT_GRACE_SECONDS


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
    maintenance.pause_point("purge-before")
    repo.catalog.purge_version(current.id)
    return None


def restore_version(repo: Repository, project: str, name: str, selector: str) -> VersionRecord:
    try:
        record = repo.catalog.get_version(project, name, selector, include_deleted=True)
    except NotFoundError as e:
        raise NotFoundError(f"cannot restore {project}/{name}:{selector}: {e} "
                            "(a version deleted with --permanent is gone for good)") from None
    return repo.catalog.restore_version(record.id)


# ----------------------------------------------------------------------------- gc
def gc(repo: Repository, dry_run: bool = False, grace: float | None = None,
       repack_threshold: float = maintenance.DEFAULT_REPACK_THRESHOLD,
       on_plan: Callable[[maintenance.GcPlan], None] | None = None) -> maintenance.GcPlan:
    """Reclaim bytes no version (live or soft-deleted) references; see store/maintenance.py."""
    return maintenance.run_gc(
        repo.store, lambda: repo.catalog.referenced_digests(include_deleted=True),
        grace=_gc_grace_default() if grace is None else grace, dry_run=dry_run,
        repack_threshold=repack_threshold, on_plan=on_plan,
    )


# ----------------------------------------------------------------------------- accounting
@dataclass
class Usage:
    logical: int = 0  # sum of file sizes of the version
    exclusive: int = 0  # raw bytes of chunks only this version holds


def usage(repo: Repository) -> dict[int, Usage]:
    """Logical and exclusive bytes of every version (soft-deleted included)."""
    per_version: dict[int, set[str]] = defaultdict(set)
    out: dict[int, Usage] = defaultdict(Usage)
    for vid, digest, size in repo.catalog.version_digests(include_deleted=True):
        per_version[vid].add(digest)
        out[vid].logical += size
    all_digests = set().union(*per_version.values()) if per_version else set()
    recipes = maintenance.file_chunks(repo.store, all_digests)
    sizes = maintenance.chunk_sizes(repo.store)
    holders: dict[bytes, set[int]] = defaultdict(set)
    for vid, digests in per_version.items():
        for d in digests:
            for c in recipes.get(d, ()):
                holders[c].add(vid)
    for c, vids in holders.items():
        if len(vids) == 1:
            out[next(iter(vids))].exclusive += sizes.get(c, 0)
    return dict(out)


def version_usage(repo: Repository, version_id: int) -> Usage:
    return usage(repo).get(version_id, Usage())


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
    """Soft-delete what the retention policies drop (printing the plan first)."""
    plan = plan_prune(repo)
    if on_plan:
        on_plan(plan)
    if not dry_run:
        for r in plan.drop:
            repo.catalog.delete_version(r.id)
        plan.executed = True
    return plan


# ----------------------------------------------------------------------------- stats
def stats(repo: Repository, gc_grace: float | None = None) -> dict[str, Any]:
    """Figures measured from the catalog and the store: logical bytes (what all live
    versions add up to), stored bytes (pack bytes on disk), saved bytes and dedup ratio,
    per type and per artifact, soft-deleted bytes and what gc would reclaim now."""
    cat = repo.catalog
    st = repo.store.stats()
    use = usage(repo)
    types: dict[str, dict[str, int]] = {}
    per_artifact = []
    logical = deleted_logical = deleted_exclusive = 0
    for art in cat.list_artifacts():
        recs = cat.list_versions(art.project, art.name, include_deleted=True)
        live = [r for r in recs if r.state != "deleted"]
        dead = [r for r in recs if r.state == "deleted"]
        a_logical = sum(r.size for r in live)
        logical += a_logical
        deleted_logical += sum(r.size for r in dead)
        deleted_exclusive += sum(use.get(r.id, Usage()).exclusive for r in dead)
        t = types.setdefault(art.type, {"artifacts": 0, "versions": 0, "logical_bytes": 0})
        t["artifacts"] += 1
        t["versions"] += len(live)
        t["logical_bytes"] += a_logical
        per_artifact.append({
            "name": f"{art.project}/{art.name}", "type": art.type, "versions": len(live),
            "deleted_versions": len(dead), "logical_bytes": a_logical,
            "exclusive_bytes": sum(use.get(r.id, Usage()).exclusive for r in live),
        })
    plan = maintenance.plan_gc(repo.store, cat.referenced_digests(include_deleted=True),
                               grace=_gc_grace_default() if gc_grace is None else gc_grace)
    stored = st.stored_bytes
    return {
        "logical_bytes": logical,
        "stored_bytes": stored,
        "unique_bytes": st.chunk_bytes,
        "saved_bytes": logical - stored,
        "dedup_ratio": round(logical / stored, 3) if stored else None,
        "packs": st.pack_count, "chunks": st.chunk_count, "files": st.file_count,
        "soft_deleted_logical_bytes": deleted_logical,
        "soft_deleted_exclusive_bytes": deleted_exclusive,
        "gc_reclaimable_bytes": plan.bytes_freed,
        "types": types,
        "artifacts": per_artifact,
    }


# ----------------------------------------------------------------------------- fsck
def fsck(repo: Repository, repair: bool = False) -> dict[str, Any]:
    """Check the store and every manifest against it; with repair, quarantine corrupt
    packs, rebuild the index and mark affected versions broken."""
    report = maintenance.fsck(repo.store)
    known = {f.digest for f in repo.store.iter_files()}
    bad = set(report.bad_files)
    affected: dict[int, set[str]] = defaultdict(set)
    missing_files = set()
    for vid, digest, _ in repo.catalog.version_digests(include_deleted=True):
        if digest not in known:
            missing_files.add(digest)
            affected[vid].add(digest)
        elif digest in bad:
            affected[vid].add(digest)
    records = repo.catalog.get_versions(affected)
    result: dict[str, Any] = {
        **report.as_dict(),
        "missing_files": sorted(missing_files),
        "affected_versions": sorted(r.qualified_name for r in records.values()),
    }
    result["ok"] = report.ok and not missing_files
    if repair:
        done = maintenance.repair(repo.store, report)
        still_bad = set(done["bad_files"]) | missing_files
        marked = []
        for vid, digests in affected.items():
            r = records.get(vid)
            if r is not None and r.state == "live" and digests & still_bad:
                repo.catalog.set_version_state(vid, "broken")
                marked.append(r.qualified_name)
        done["marked_broken"] = sorted(marked)
        result["repaired"] = done
    return result


def _now() -> float:
    return time.time()
