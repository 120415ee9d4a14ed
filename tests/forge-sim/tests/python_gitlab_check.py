#!/usr/bin/env python3
"""Drive a running forge-sim (`small` dataset) with python-gitlab, the most used GitLab client.

Usage: python_gitlab_check.py <url> <owner-token>. Exits non-zero, naming what differed, when
the simulator answers in a way python-gitlab does not understand or with the wrong data.
"""

import sys

try:
    import gitlab
except ImportError:
    sys.exit("python-gitlab is not installed: pip install python-gitlab")


def check(condition, message):
    if not condition:
        sys.exit(f"mismatch: {message}")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python_gitlab_check.py <url> <token>")
    url, token = sys.argv[1], sys.argv[2]
    gl = gitlab.Gitlab(url, private_token=token, retry_transient_errors=False)
    gl.auth()
    check(gl.user is not None and gl.user.username == "ada", f"current user is {gl.user!r}")

    groups = gl.groups.list(get_all=True)
    paths = {g.full_path for g in groups}
    for wanted in ("acme", "acme/backend", "acme/backend/services", "acme/frontend"):
        check(wanted in paths, f"group {wanted} missing from {sorted(paths)}")
    acme = gl.groups.get("acme")
    check(acme.full_path == "acme", f"groups.get('acme') gave {acme.full_path}")

    project = gl.projects.get("acme/backend/api")
    check(project.path_with_namespace == "acme/backend/api", "projects.get by path")

    # Offset pagination, page by page through the lazy iterator ...
    lazy = project.issues.list(iterator=True, per_page=5, state="all")
    iterated = [issue.iid for issue in lazy]
    check(lazy.total is not None, "the iterator saw no X-Total header")
    check(len(iterated) == lazy.total, f"iterated {len(iterated)} issues, X-Total {lazy.total}")
    check(len(iterated) > 5, f"want more than one page of issues, got {len(iterated)}")
    check(len(set(iterated)) == len(iterated), f"an issue came twice: {iterated}")
    # ... and all at once.
    everything = project.issues.list(get_all=True, per_page=3, state="all")
    check(sorted(i.iid for i in everything) == sorted(iterated), "get_all and iterator differ")
    first = project.issues.get(iterated[0])
    check(first.iid == iterated[0] and first.title, "issues.get by iid")
    notes = first.notes.list(get_all=True)
    check(all(n.body is not None for n in notes), "notes without body")

    # Keyset pagination as python-gitlab requests it for projects.
    keyset = gl.projects.list(
        iterator=True, pagination="keyset", order_by="id", sort="asc", per_page=2
    )
    ids = [p.id for p in keyset]
    check(len(ids) >= 4 and ids == sorted(ids), f"keyset project ids {ids}")

    # Writes: a label, read back by name and in the list.
    created = project.labels.create({"name": "py-label ✓", "color": "#123456"})
    check(created.name == "py-label ✓", f"created label {created.name!r}")
    names = {label.name for label in project.labels.list(get_all=True)}
    check("py-label ✓" in names, f"new label missing from {sorted(names)}")
    try:
        project.labels.create({"name": "py-label ✓", "color": "#123456"})
        check(False, "creating the same label twice must fail")
    except gitlab.exceptions.GitlabCreateError as e:
        check(e.response_code == 409, f"duplicate label answered {e.response_code}")

    print(
        f"ok: {len(groups)} groups, {len(iterated)} issues over {lazy.total_pages} pages, "
        f"{len(ids)} projects by keyset, label created"
    )


if __name__ == "__main__":
    main()
