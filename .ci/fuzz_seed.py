#!/usr/bin/env python3
"""Seeds a running Berth with the resources schemathesis needs to get past 404.

Usage: fuzz_seed.py BASE_URL TOKEN_FILE
Prints `export BERTH_FUZZ_...=id` lines for the shell to `eval`; schemathesis.toml reads them.
Two of each resource: one the routes read and change, and one the DELETE routes may remove,
so a successful DELETE early in the run does not turn every later call into a 404.
"""
import json
import sys
import urllib.request
import uuid

base, token_file = sys.argv[1], sys.argv[2]
with open(token_file, encoding="utf-8") as handle:
    token = handle.read().strip()


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base.rstrip("/") + path, data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def directory(kind, name, parent=None):
    guid = str(uuid.uuid4())
    body = {"name": name}
    if parent:
        body["relationships"] = {parent[0]: {"data": {"guid": parent[1]}}}
    call("PUT", f"/v3/{kind}/{guid}", body)
    return guid


ids = {}
# The organization every registry route works on, with a registry, a robot and a credential
# in a space and an app of its own.
ids["ORGANIZATION"] = directory("organizations", "fuzz")
ids["SPACE"] = directory("spaces", "fuzz", ("organization", ids["ORGANIZATION"]))
ids["APP"] = directory("apps", "fuzz", ("space", ids["SPACE"]))
ids["CREDENTIAL"] = call("POST", "/v3/registry_credentials", {
    "location": "registry.example.com/fuzz", "username": "fuzz", "password": "fuzz",
    "relationships": {"app": {"data": {"guid": ids["APP"]}}}})["guid"]
call("POST", f"/api/v1/organizations/{ids['ORGANIZATION']}/registry")
ids["ROBOT"] = str(call("POST", f"/api/v1/organizations/{ids['ORGANIZATION']}/registry/credentials",
                        {"name": "fuzz", "access": "pull"})["credential"]["id"])
# What the DELETE routes may remove.
ids["SPARE_ORGANIZATION"] = directory("organizations", "fuzz-spare")
ids["SPARE_REGISTRY_ORGANIZATION"] = directory("organizations", "fuzz-spare-registry")
call("POST", f"/api/v1/organizations/{ids['SPARE_REGISTRY_ORGANIZATION']}/registry")
ids["SPARE_SPACE"] = directory("spaces", "fuzz-spare", ("organization", ids["ORGANIZATION"]))
ids["SPARE_APP"] = directory("apps", "fuzz-spare", ("space", ids["SPACE"]))
ids["SPARE_CREDENTIAL"] = call("POST", "/v3/registry_credentials", {
    "location": "registry.example.com/spare", "username": "fuzz", "password": "fuzz",
    "relationships": {"space": {"data": {"guid": ids["SPACE"]}}}})["guid"]
ids["SPARE_ROBOT"] = str(call(
    "POST", f"/api/v1/organizations/{ids['ORGANIZATION']}/registry/credentials",
    {"name": "spare", "access": "pull"})["credential"]["id"])
# An event the seeding itself recorded, for `GET /v3/audit_events/{guid}`.
ids["AUDIT_EVENT"] = call("GET", "/v3/audit_events?per_page=1")["resources"][0]["guid"]
for name, value in ids.items():
    print(f"export BERTH_FUZZ_{name}={value}")
