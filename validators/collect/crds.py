"""Load CustomResourceDefinitions from the folder a user points at (`--crd-dir`): the files they apply
to the cluster. Only I/O and shape checks here; validation is :mod:`validators.crd`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InputError
from ..crd import CrdSet

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_dir(path: str, flag: str = "--crd-dir") -> CrdSet:
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(flag, f"{path} is not a folder.", "point it at the folder of CRD files you apply "
                         "(e.g. the gateway-api release's config/crd/standard).")
    crds = CrdSet()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")):
        try:
            docs = list(yaml.load_all(f.read_text(), Loader=_Loader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"{flag} {f}", f"cannot be read as YAML: {str(exc).splitlines()[0]}.",
                             "pass a folder of CRD YAML files.") from None
        for i, doc in enumerate(docs, start=1):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                _add(crds, doc, f"{f.name} document {i}", flag)
    if not crds.crds:
        raise InputError(flag, f"{path} holds no CustomResourceDefinition.",
                         "point it at the folder of CRD files (e.g. gateway.networking.k8s.io_httproutes.yaml).")
    return crds


def _add(crds: CrdSet, doc: dict[str, Any], where: str, flag: str) -> None:
    spec = doc.get("spec")
    try:
        group, kind = spec["group"], spec["names"]["kind"]
        versions = {}
        for v in spec["versions"]:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            if not isinstance(schema, dict):
                raise KeyError("schema.openAPIV3Schema")
            versions[v["name"]] = {"served": bool(v.get("served")), "schema": schema}
    except (KeyError, TypeError) as exc:
        raise InputError(f"{flag} {where}", f"is not a complete CustomResourceDefinition (missing {exc}).",
                         "use the CRD files as released, unmodified.") from None
    crds.crds[(group, kind)] = {"plural": spec["names"].get("plural"), "scope": spec.get("scope"),
                                "versions": versions, "source": where}
