"""A small kustomize renderer for exactly the features deploy/kubernetes uses, so the tests render the
manifests with no kustomize binary (none is installed by the project; PyPI's "kustomize" packages are not
the Go tool). Supported: ``resources`` (files and folders with a kustomization.yaml), ``namespace``,
``labels`` (``pairs`` on metadata only), ``images`` (newName/newTag/digest), ``patches`` with ``path``
(strategic merge: maps merged, lists of named maps merged by name, other lists replaced; ``$patch`` is
not supported) or an inline JSON 6902 ``patch`` with a ``target`` (kind/name). Anything else raises,
rather than render differently from kustomize. When ``kubectl`` is on the PATH, a test compares this
output with ``kubectl kustomize``'s.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
                  "StorageClass", "IngressClass"}
KNOWN = {"apiVersion", "kind", "namespace", "labels", "resources", "images", "patches"}


def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(folder: Path) -> list[dict]:
    folder = Path(folder)
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN
    if unknown:
        raise NotImplementedError(f"{folder}: kustomization fields not supported here: {sorted(unknown)}")
    objects: list[dict] = []
    for resource in kustomization.get("resources", []):
        path = (folder / resource).resolve()
        objects += render(path) if path.is_dir() else load_documents(path)
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            for doc in load_documents(folder / patch["path"]):
                target = _find(objects, doc["kind"], doc["metadata"]["name"])
                _merge(target, doc)
        else:
            ops = yaml.safe_load(patch["patch"])
            for target in objects:
                if target["kind"] == patch["target"]["kind"] and target["metadata"]["name"] == patch["target"]["name"]:
                    for op in ops:
                        _json_patch(target, op)
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                _set_image(container, image)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    for label in kustomization.get("labels", []):
        if set(label) - {"pairs"}:
            raise NotImplementedError("labels: only pairs (no selectors, no templates) are supported")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    return objects


def _find(objects: list[dict], kind: str, name: str) -> dict:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"patch target {kind}/{name} not found")


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif (isinstance(value, list) and isinstance(target.get(key), list) and value
              and all(isinstance(item, dict) and "name" in item for item in value)):
            for item in value:
                existing = next((t for t in target[key] if t.get("name") == item["name"]), None)
                if existing is None:
                    target[key].append(copy.deepcopy(item))
                else:
                    _merge(existing, item)
        else:
            target[key] = copy.deepcopy(value)


def _json_patch(target: dict, op: dict) -> None:
    if op["op"] not in ("replace", "add"):
        raise NotImplementedError(f"JSON patch op {op['op']!r}")
    *parents, last = [part for part in op["path"].split("/")[1:]]
    node = target
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op["op"] == "add":
            node.insert(index, copy.deepcopy(op["value"]))
        else:
            node[index] = copy.deepcopy(op["value"])
    else:
        node[last] = copy.deepcopy(op["value"])


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    pod = spec.get("jobTemplate", {}).get("spec", {}).get("template", spec.get("template", {})).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _set_image(container: dict, image: dict) -> None:
    name, sep, tag = container.get("image", "").partition("@")
    if not sep:
        name, _, tag = name.partition(":")
    if name != image["name"]:
        return
    name = image.get("newName", name)
    if "digest" in image:
        container["image"] = f"{name}@{image['digest']}"
    elif "newTag" in image:
        container["image"] = f"{name}:{image['newTag']}"
    else:
        container["image"] = f"{name}:{tag}" if tag else name


def dump(objects: list[dict]) -> str:
    return "".join("---\n" + yaml.safe_dump(obj, sort_keys=False) for obj in objects)
