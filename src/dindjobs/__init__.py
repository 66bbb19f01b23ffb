"""dindjobs: Jenkins jobs as code, built inside a Docker-in-Docker wrapper."""

__version__ = "0.1.0"
