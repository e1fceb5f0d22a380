"""CustomResourceDefinition schemas as a validator: the structural `openAPIV3Schema` (with jsonschema,
plus the `x-kubernetes-*` extensions and defaulting) and the `x-kubernetes-validations` CEL rules that
matter for Gateway API routes, implemented in Python (:mod:`validators.crd.cel`). Pure: the CRDs are
loaded by :mod:`validators.collect.crds`."""

from .schema import CrdSet, Problem, validate_object

__all__ = ["CrdSet", "Problem", "validate_object"]
