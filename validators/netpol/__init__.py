"""A general Kubernetes NetworkPolicy evaluator (model, parser, evaluator, workload expansion)."""

from .evaluate import Evaluator, Side, Verdict
from .model import Endpoint, Policy, Selector, parse_policy, parse_selector, pod_endpoint

__all__ = ["Evaluator", "Side", "Verdict", "Endpoint", "Policy", "Selector", "parse_policy", "parse_selector",
           "pod_endpoint"]
