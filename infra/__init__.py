"""Infrastructure as code: the CloudFormation template rendered from the provisioning code.

``python -m infra.render`` writes ``infra/filesearch.yaml``; see docs/deployment.md and
docs/iam.md.
"""
