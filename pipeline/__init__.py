"""Core of filesearch-pipeline: settings, errors, object references, AWS clients, provisioning."""
