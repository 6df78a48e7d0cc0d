"""Designs the pipeline is compared against."""
