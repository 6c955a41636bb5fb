"""Policy: the service catalogue, the rule model and their validating loaders."""

from .catalogue import Service, ServiceCatalogue
from .model import ACTIONS, ApprovedChannel, Limits, Plan, Policy, Rule
from .validate import PolicyError

__all__ = ["ACTIONS", "ApprovedChannel", "Limits", "Plan", "Policy", "PolicyError", "Rule",
           "Service", "ServiceCatalogue"]
