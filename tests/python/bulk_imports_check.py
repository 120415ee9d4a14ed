#!/usr/bin/env python3
"""Drives the appliance's bulk_imports API with python-gitlab, exactly as a script written for GitLab
would, and checks every answer.

    bulk_imports_check.py URL TOKEN SOURCE_URL SOURCE_TOKEN SOURCE_GROUP DEST_NAMESPACE
                          [--slug SLUG] [--timeout 60] [--accept finished] [--cancel]

It starts a migration of SOURCE_GROUP into DEST_NAMESPACE (`gl.bulk_imports.create`), finds it in
`gl.bulk_imports.list()`, reads it back with `gl.bulk_imports.get()`, lists its entities
(`bulk_import.entities.list()`, `gl.bulk_import_entities.list()`), then polls with
`bulk_import.refresh()` until it ends or the timeout passes. It exits 0 when the migration ended in
an accepted status (default: finished), and 1 with a message naming the mismatch otherwise.
With --cancel it cancels the migration (POST /bulk_imports/:id/cancel) before polling.
No answer may contain SOURCE_TOKEN.
"""

import argparse
import json
import sys
import time
import uuid

try:
    import gitlab
except ImportError:
    sys.stderr.write("python-gitlab is not installed: pip install python-gitlab\n")
    sys.exit(2)

TERMINAL = {"finished", "failed", "canceled", "timeout"}
BULK_IMPORT_FIELDS = {"id", "status", "source_type", "source_url", "created_at", "updated_at", "has_failures"}
ENTITY_FIELDS = {
    "id", "bulk_import_id", "status", "entity_type", "source_full_path", "destination_full_path",
    "destination_name", "destination_slug", "destination_namespace", "parent_id", "namespace_id",
    "project_id", "created_at", "updated_at", "failures", "migrate_projects", "migrate_memberships",
    "has_failures", "stats",
}


def fail(message):
    sys.stderr.write(f"bulk_imports_check: FAILED: {message}\n")
    sys.exit(1)


def expect(condition, message):
    if not condition:
        fail(message)


def attrs(obj):
    return obj.asdict() if hasattr(obj, "asdict") else dict(obj.attributes)


def check_secret(secret, what, obj):
    text = json.dumps(attrs(obj), default=str)
    expect(secret not in text, f"{what} contains the source access token")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the appliance's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("token", help="the appliance's API token")
    parser.add_argument("source_url")
    parser.add_argument("source_token")
    parser.add_argument("source_group", help="full path of the group to migrate")
    parser.add_argument("dest_namespace", help="existing destination group ('' for top level)")
    parser.add_argument("--slug", help="destination slug (default: the group's path and a random suffix)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the end (default 60)")
    parser.add_argument(
        "--accept", default="finished",
        help="comma-separated statuses that count as success at the end (default: finished)",
    )
    parser.add_argument("--cancel", action="store_true", help="cancel the migration before polling")
    parser.add_argument("--project", action="store_true",
                        help="source_group is a project: migrate it as a project_entity")
    args = parser.parse_args()
    accept = {s.strip() for s in args.accept.split(",") if s.strip()}
    slug = args.slug or f"{args.source_group.split('/')[-1]}-{uuid.uuid4().hex[:8]}"
    secret = args.source_token

    gl = gitlab.Gitlab(args.url, private_token=args.token, retry_transient_errors=False)

    # Start.
    try:
        bulk = gl.bulk_imports.create({
            "configuration": {"url": args.source_url, "access_token": args.source_token},
            "entities": [{
                "source_type": "project_entity" if args.project else "group_entity",
                "source_full_path": args.source_group,
                "destination_slug": slug,
                "destination_namespace": args.dest_namespace,
            }],
        })
    except gitlab.exceptions.GitlabCreateError as e:
        msg = str(e).replace(secret, "[REDACTED]") if secret else str(e)
        fail(f"create was refused: {e.response_code}: {msg}")
    check_secret(secret, "the created bulk import", bulk)
    missing = BULK_IMPORT_FIELDS - set(attrs(bulk))
    expect(not missing, f"the created bulk import lacks {sorted(missing)}: {attrs(bulk)}")
    expect(bulk.source_type == "gitlab", f"source_type is {bulk.source_type!r}, expected 'gitlab'")
    expect(bulk.status in {"created", "started"} | TERMINAL, f"unexpected status {bulk.status!r} after create")
    print(f"created bulk import {bulk.id} ({bulk.status}) -> {args.dest_namespace}/{slug}")

    # List: newest first by default, oldest first with sort=asc.
    listed = gl.bulk_imports.list(get_all=True)
    ids = [b.id for b in listed]
    expect(bulk.id in ids, f"bulk import {bulk.id} is not in gl.bulk_imports.list(): {ids}")
    created = [b.created_at for b in listed]
    expect(created == sorted(created, reverse=True), f"the default listing is not newest first: {created}")
    # One per page: python-gitlab follows the Link headers, and must see the same imports.
    paged = [b.id for b in gl.bulk_imports.list(get_all=True, per_page=1)]
    expect(paged == ids, f"listing one per page gave {paged}, one page gave {ids}")
    ascending = [b.created_at for b in gl.bulk_imports.list(get_all=True, sort="asc")]
    expect(ascending == sorted(ascending), f"sort=asc is not oldest first: {ascending}")
    for b in listed:
        check_secret(secret, f"listed bulk import {b.id}", b)

    # Get.
    again = gl.bulk_imports.get(bulk.id)
    expect(again.id == bulk.id, f"gl.bulk_imports.get({bulk.id}) returned id {again.id}")
    expect(again.source_url.rstrip("/") == args.source_url.rstrip("/"),
           f"source_url is {again.source_url!r}, expected {args.source_url!r}")
    check_secret(secret, "the fetched bulk import", again)

    # Entities of this import, and of all imports.
    entities = bulk.entities.list(get_all=True)
    expect(entities, f"bulk import {bulk.id} lists no entities")
    top = [e for e in entities if e.source_full_path == args.source_group]
    expect(len(top) == 1, f"expected one entity for {args.source_group}, got {[attrs(e) for e in entities]}")
    entity = top[0]
    missing = ENTITY_FIELDS - set(attrs(entity))
    expect(not missing, f"the entity lacks {sorted(missing)}: {attrs(entity)}")
    expect(entity.bulk_import_id == bulk.id, f"entity.bulk_import_id is {entity.bulk_import_id}, expected {bulk.id}")
    expect(entity.destination_slug == slug, f"destination_slug is {entity.destination_slug!r}, expected {slug!r}")
    expect(entity.destination_namespace == args.dest_namespace,
           f"destination_namespace is {entity.destination_namespace!r}, expected {args.dest_namespace!r}")
    kind = "project" if args.project else "group"
    expect(entity.entity_type == kind, f"entity_type is {entity.entity_type!r}, expected {kind!r}")
    expect(entity.migrate_projects is True and entity.migrate_memberships is True,
           "migrate_projects and migrate_memberships must default to true")
    all_ids = {e.id for e in gl.bulk_import_entities.list(get_all=True)}
    expect({e.id for e in entities} <= all_ids,
           f"gl.bulk_import_entities.list() lacks entities of bulk import {bulk.id}")
    one = bulk.entities.get(entity.id)
    expect(one.id == entity.id, f"bulk_import.entities.get({entity.id}) returned id {one.id}")
    check_secret(secret, "the entity", one)

    if args.cancel:
        # python-gitlab has no method for this endpoint; scripts call it through http_post.
        canceled = gl.http_post(f"/bulk_imports/{bulk.id}/cancel")
        expect(canceled.get("id") == bulk.id, f"cancel answered {canceled}")
        expect(canceled.get("status") in TERMINAL, f"cancel left the import {canceled.get('status')!r}")
        expect(secret not in json.dumps(canceled), "the cancel answer contains the source access token")
        bulk.refresh()
        print(f"canceled bulk import {bulk.id}: {bulk.status}")

    # Poll until the migration ends.
    deadline = time.monotonic() + args.timeout
    while bulk.status not in TERMINAL:
        if time.monotonic() > deadline:
            fail(f"bulk import {bulk.id} is still {bulk.status!r} after {args.timeout:.0f} s")
        time.sleep(1)
        bulk.refresh()
        check_secret(secret, "the refreshed bulk import", bulk)

    entities = bulk.entities.list(get_all=True)
    summary = [
        f"{e.source_full_path}: {e.status}, stats {e.stats}, {len(e.failures)} failures"
        + (f" (first: {e.failures[0].get('exception_message')})" if e.failures else "")
        for e in entities
    ]
    for e in entities:
        check_secret(secret, f"entity {e.id}", e)
    if bulk.status not in accept:
        fail(f"bulk import {bulk.id} ended {bulk.status!r}, expected one of {sorted(accept)}:\n  "
             + "\n  ".join(summary))
    print(f"bulk import {bulk.id} ended {bulk.status!r}")
    if args.project and bulk.status == "finished":
        done = bulk.entities.get(entity.id)
        expect(isinstance(done.project_id, int) and done.project_id > 0,
               f"a finished project entity names its destination project: project_id {done.project_id!r}")
        print(f"  project {done.destination_full_path} (id {done.project_id} at the destination)")
    for line in summary:
        print(f"  {line}")


if __name__ == "__main__":
    main()
