"""The bridge from raw S3 events (SQS) to Celery chains; run it with ``python -m bridge``."""
